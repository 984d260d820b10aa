"""``devicebench llm`` end to end in a subprocess (workers included), on a tiny LLM: llama-bench
output parsed back, the store, JSON, report, compare, and bad input as one line."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from devicebench.reports.llm import LLAMA_BENCH_FIELDS

ARGS = ["qwen2.5-0.5b-tiny", "--device", "cpu", "--prompt", "16", "--gen", "5", "-r", "2", "--threads", "1"]


@pytest.fixture(scope="module")
def llm_run(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    from tests.conftest import cli_env

    folder = tmp_path_factory.mktemp("llmcli")
    db, out = folder / "r.db", folder / "run.json"
    proc = subprocess.run([sys.executable, "-m", "devicebench", "llm", *ARGS, "--output", "json", "--db", str(db),
                           "--json", str(out), "--html", str(folder / "r.html")],
                          capture_output=True, text=True, timeout=600, env=cli_env(), cwd=folder,
                          stdin=subprocess.DEVNULL, check=False)
    return proc, folder


def test_llm_prints_llama_bench_json_and_keeps_the_run(llm_run) -> None:  # type: ignore[no-untyped-def]
    proc, folder = llm_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(proc.stdout)  # stdout is llama-bench's JSON only: tables went to stderr
    assert [(r["n_prompt"], r["n_gen"]) for r in rows] == [(16, 0), (0, 5)]
    for row in rows:
        assert all(f in row for f in LLAMA_BENCH_FIELDS)
        assert len(row["samples_ns"]) == 2 and row["n_threads"] == 1 and row["backends"] == "CPU"
        assert row["parity_passed"] is True and row["avg_ts"] > 0
    assert "Prefill (prompt processing)" in proc.stderr and "Decode (token generation)" in proc.stderr
    doc = json.loads((folder / "run.json").read_text())
    kinds = [(r["kind"], r["role"], r["variant"]) for r in doc["records"]]
    assert kinds == [("llm", "parity-reference", "eager"), ("llm", "", "sdpa")]
    assert doc["partial"] is False and all(r["status"] == "ok" for r in doc["records"])
    assert (folder / "r.html").read_text().startswith("<!DOCTYPE html>")


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The CLI in this process (fast: no interpreter to start), its exit code and output."""
    from devicebench.cli import main

    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_report_show_and_compare_read_an_llm_run(llm_run, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, folder = llm_run
    db, out = folder / "r.db", folder / "run.json"
    code, stdout, stderr = _main(capsys, "report", "last", "--db", str(db), "--csv", "-", "--md", str(tmp_path / "r.md"))
    assert code == 0, stderr
    rows = list(csv.DictReader(io.StringIO(stdout)))
    assert [r["n_gen"] for r in rows] == ["0", "5"] and rows[1]["variant"] == "sdpa"
    assert "**Decode**" in (tmp_path / "r.md").read_text()
    code, stdout, stderr = _main(capsys, "compare", str(out), "last", "--db", str(db), "--json", "-")
    assert code == 0, stderr
    result = json.loads(stdout)
    assert {row["variant"].split()[-1] for row in result["rows"]} == {"prefill", "decode"}
    assert all(row["ratio"] == pytest.approx(1.0) for row in result["rows"])  # a run against itself


@pytest.mark.parametrize(("args", "message"), [
    (["no-such-llm"], "unknown model 'no-such-llm'"),
    (["qwen2.5-0.5b-tiny", "--prompt", "300"], "longer than qwen2.5-0.5b-tiny's context of 256 tokens"),
    (["qwen2.5-0.5b-tiny", "--variant", "turbo"], "unknown variant"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    try:
        code, _, stderr = _main(capsys, "llm", *args, "--device", "cpu", "--no-db")
    except SystemExit as exc:  # argparse's own errors
        code, stderr = int(exc.code or 0), capsys.readouterr().err
    assert code == 2, stderr
    assert message in stderr and "Traceback" not in stderr
    if "--variant" not in args:  # argparse's own errors come with the usage line
        assert len(stderr.strip().splitlines()) == 1


def test_a_folder_that_is_not_a_causal_lm_is_one_line(capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "encoder"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertModel"]}))
    (folder / "model.safetensors").write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    code, _, stderr = _main(capsys, "llm", str(folder), "--device", "cpu", "--no-db")
    assert code == 2
    assert "not a causal language model" in stderr and len(stderr.strip().splitlines()) == 1
