"""Hostile hands at the command line (issue 12): outputs checked before measuring, read
commands that create nothing, exact run ids, one-line errors, exit codes that mean what the
docs say, and temporary folders cleaned even after ``kill -9``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
from conftest import cli_env

QUICK = ["--quick", "--max-time", "0.5"]


@pytest.mark.parametrize("flag, target, words", [
    ("--json", "missing-folder/out.json", "does not exist"),
    ("--json", "afile/out.json", "does not exist"),
    ("--html", "afile/report.html", "is a file, not a folder"),
    ("--json", ".", "is a folder"),
])
def test_unwritable_outputs_are_refused_before_anything_is_measured(run_cli, tmp_path: Path, flag: str,  # type: ignore[no-untyped-def]
                                                                   target: str, words: str) -> None:
    (tmp_path / "afile").write_text("x")
    db = tmp_path / "r.db"
    proc = run_cli("infer", "tinycnn-tiny", "--device", "cpu", "--db", str(db), flag, str(tmp_path / target), *QUICK)
    assert proc.returncode == 2, proc.stderr
    assert words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not db.exists()  # nothing measured, nothing stored


def test_infer_file_html_writes_the_report(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model = torch.nn.Sequential(torch.nn.Linear(4, 2)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(model, torch.randn(1, 4)), str(tmp_path / "m.ts"))
    html = tmp_path / "reports" / "m.html"
    proc = run_cli("infer", str(tmp_path / "m.ts"), "--input-shape", "1,4", "--device", "cpu", "--no-db",
                   "--html", str(html), *QUICK)
    assert proc.returncode == 0, proc.stderr
    assert html.is_file() and "<html" in html.read_text()[:200].lower()


def test_read_commands_with_a_mistyped_db_create_nothing(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    typo = tmp_path / "no-such-folder" / "results.db"
    for argv in (["history"], ["show", "last"], ["report", "last"], ["compare", "a", "b"]):
        proc = run_cli(*argv, "--db", str(typo))
        assert proc.returncode == 2, (argv, proc.stderr)
        assert "no runs stored at" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not typo.parent.exists()


def test_a_new_user_with_no_database_is_told_to_run_first_and_nothing_is_created(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    home.mkdir()
    env = cli_env(HOME=str(home), XDG_DATA_HOME=str(home / "data"), XDG_CONFIG_HOME=str(home / "config"),
                  XDG_CACHE_HOME=str(home / "cache"))
    env.pop("DEVICEBENCH_DB", None)  # the true default path, in the user data folder
    for where, reads in ((env, (["show", "last"], ["show", "--json", "-"], ["report", "last"], ["compare", "last", "last"])),
                         ({**env, "DEVICEBENCH_DB": str(home / "later" / "results.db")}, (["show"],))):
        hist = run_cli("history", env=where, cwd=home)
        assert hist.returncode == 0, hist.stderr
        assert hist.stdout.startswith("no runs yet: run `devicebench run` first") and hist.stderr == ""
        assert len(hist.stdout.strip().splitlines()) == 1
        for argv in reads:
            proc = run_cli(*argv, env=where, cwd=home)
            assert proc.returncode == 2 and proc.stdout == "", (argv, proc.stdout)
            assert proc.stderr.startswith("devicebench: error: no runs yet: run `devicebench run` first"), proc.stderr
            assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert list(home.iterdir()) == []  # read commands create nothing


def test_show_with_like_wildcards_matches_no_other_run(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "r.db"
    proc = run_cli("infer", "tinycnn-tiny", "--device", "cpu", "--batch-size", "1", "--db", str(db), *QUICK)
    assert proc.returncode == 0, proc.stderr
    for ref in ("___", "%"):
        shown = run_cli("show", ref, "--db", str(db))
        assert shown.returncode == 2 and "no run" in shown.stderr, shown.stdout


def test_a_non_utf8_file_name_is_one_line(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    name = os.fsdecode(b"\xff\xfe.pt")
    (tmp_path / name).write_bytes(b"not a model")
    proc = subprocess.run([sys.executable, "-m", "devicebench", "infer", name, "--device", "cpu", "--no-db"],
                          capture_output=True, text=True, env=cli_env(), cwd=tmp_path, timeout=120, check=False,
                          errors="backslashreplace")
    assert proc.returncode == 2, proc.stderr
    assert "UTF-8" in proc.stderr and "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_a_third_ctrl_c_stops_at_once_without_a_traceback(monkeypatch: pytest.MonkeyPatch,
                                                          capfd: pytest.CaptureFixture[str]) -> None:
    from devicebench.cli import _Interrupts

    def _exit(code: int) -> None:
        raise SystemExit(code)

    monkeypatch.setattr(os, "_exit", _exit)
    handler = _Interrupts()
    for _ in range(2):
        with pytest.raises(KeyboardInterrupt):  # the first two stop cleanly
            handler(signal.SIGINT, None)
    with pytest.raises(SystemExit) as info:  # the third: at once
        handler(signal.SIGINT, None)
    assert info.value.code == 130
    assert "interrupted three times" in capfd.readouterr().err


def test_a_run_where_nothing_was_measured_exits_non_zero(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Out of memory at the only configuration: the docs say exit 0 means every configuration
    was measured, so it is 1."""
    import devicebench.run.inference as run_inference
    from devicebench.cli import main
    from devicebench.results.records import DeviceRef, InferenceRecord, RunInfo

    def oom(configs, **kwargs):  # type: ignore[no-untyped-def]
        record = InferenceRecord(run_id="r", model="tinycnn-tiny", device=DeviceRef("cpu", None, "cpu"),
                                 batch_size=1, precision="fp32", status="oom", message="out of memory")
        kwargs["on_record"](0, record)
        return RunInfo(run_id="r", command="test", status="complete"), [record]

    monkeypatch.setattr(run_inference, "execute", oom)
    assert main(["infer", "tinycnn-tiny", "--device", "cpu", "--no-db", *QUICK]) == 1


def test_a_temporary_folder_left_by_kill_9_is_removed_at_the_next_start(tmp_path: Path) -> None:
    from devicebench.launchers import process

    script = tmp_path / "parent.py"
    script.write_text(
        "import time\n"
        "from devicebench.launchers.worker import run_in_worker\n"
        "run_in_worker(time.sleep, 60)\n"
    )
    parent = subprocess.Popen([sys.executable, str(script)], env=cli_env(TMPDIR=str(tmp_path)), cwd=tmp_path)
    deadline = time.monotonic() + 60
    left: list[Path] = []
    while time.monotonic() < deadline and not left:
        left = [p for p in tmp_path.glob("devicebench-*") if (p / "call.pkl").exists()]
        time.sleep(0.2)
    assert left, "the worker's folder never appeared"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    assert left[0].exists()  # kill -9: nothing in the parent could clean up
    removed = process.clean_stale_tempdirs(tmp_path)  # what the next launch does first
    assert left[0] in removed and not left[0].exists()
    alive = tmp_path / f"devicebench-w{os.getpid()}-x"
    alive.mkdir()
    assert alive not in process.clean_stale_tempdirs(tmp_path)  # a live parent's folder stays
