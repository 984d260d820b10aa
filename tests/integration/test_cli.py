"""The CLI end to end, in a subprocess, on tiny models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

QUICK = ["--quick", "--max-time", "1"]


def test_devices_json_to_stdout(run_cli) -> None:  # type: ignore[no-untyped-def]
    proc = run_cli("devices", "--json", "-")
    assert proc.returncode == 0, proc.stderr
    env = json.loads(proc.stdout)["environment"]
    cpu = env["cpu"]
    for key in ("model", "physical_cores", "logical_cores", "flags", "memory_total_gb"):
        assert key in cpu
    assert env["torch"] == torch.__version__
    assert isinstance(env["accelerators"], list)
    assert env["python"] and env["os"]


def test_infer_writes_the_documented_json_and_stores_the_run(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out, db = tmp_path / "out.json", tmp_path / "r.db"
    proc = run_cli("infer", "tinycnn-tiny", "--device", "cpu", "--batch-size", "1,2", "--threads", "1",
                   "--json", str(out), "--db", str(db), *QUICK)
    assert proc.returncode == 0, proc.stderr
    assert "tinycnn-tiny" in proc.stdout
    # piped: no bar redraws, no stray last state of the bar; one plain line per configuration
    for stream in (proc.stdout, proc.stderr):
        assert "\r" not in stream and "\x1b" not in stream and "…" not in stream, stream
        assert not any(line.startswith("[") for line in stream.splitlines()), stream
    assert [line.split(":")[0] for line in proc.stderr.splitlines() if line.startswith("  ")] == [
        "  tinycnn-tiny cpu b1", "  tinycnn-tiny cpu b2"], proc.stderr
    if not torch.cuda.is_available():
        assert "no GPU found" in proc.stdout
    doc = json.loads(out.read_text())
    assert doc["schema_version"] == 1 and doc["partial"] is False
    assert [r["batch_size"] for r in doc["records"]] == [1, 2]
    assert all(r["status"] == "ok" and r["threads"] == 1 for r in doc["records"])
    run_id = doc["run"]["run_id"]

    hist = run_cli("history", "--db", str(db))
    assert hist.returncode == 0 and run_id in hist.stdout
    show = run_cli("show", run_id[:15], "--db", str(db), "--json", "-")
    assert show.returncode == 0, show.stderr
    assert json.loads(show.stdout)["records"][0]["samples_ms"] == doc["records"][0]["samples_ms"]


def test_a_text_model_is_measured_on_real_sentences(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # (One fresh process per configuration is proven by PIDs seen inside the workers:
    # test_promises_cli.py::test_each_configuration_is_measured_in_its_own_fresh_process.)
    out = tmp_path / "o.json"
    proc = run_cli("infer", "bert-base-tiny", "--device", "cpu", "--batch-size", "1,2", "--no-db",
                   "--json", str(out), *QUICK)
    assert proc.returncode == 0, proc.stderr
    recs = json.loads(out.read_text())["records"]
    assert [r["status"] for r in recs] == ["ok", "ok"]
    assert all("WordPiece" in r["input_source"] or "hashed" in r["input_source"] for r in recs)


@pytest.mark.parametrize(
    "args, message",
    [
        (["infer", "no-such-model"], "unknown model"),
        (["infer", "tinycnn-tiny", "--device", "tpu"], "unknown device"),
        (["infer", "tinycnn-tiny", "--weights", "/nope.pt"], "weights file not found"),
        (["show", "nope"], "no run"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(run_cli, args, message) -> None:  # type: ignore[no-untyped-def]
    proc = run_cli(*args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_a_missing_gpu_exits_2(run_cli) -> None:  # type: ignore[no-untyped-def]
    proc = run_cli("infer", "tinycnn-tiny", "--device", "cuda")
    assert proc.returncode == 2 and "not available" in proc.stderr


def test_bad_option_values_exit_2(run_cli) -> None:  # type: ignore[no-untyped-def]
    proc = run_cli("infer", "tinycnn-tiny", "--batch-size", "0")
    assert proc.returncode == 2 and "batch sizes must be >= 1" in proc.stderr


def test_a_newer_database_is_refused_by_the_cli(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    db = tmp_path / "new.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 999")
    conn.commit()
    conn.close()
    proc = run_cli("history", "--db", str(db))
    assert proc.returncode == 2 and "newer devicebench" in proc.stderr


def test_python_module_entry_point_and_version(run_cli) -> None:  # type: ignore[no-untyped-def]
    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("devicebench ")
