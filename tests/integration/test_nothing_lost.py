"""Nothing measured is lost: Ctrl-C and SIGTERM keep every finished result (store and JSON,
marked partial), kill -9 loses only the configuration in flight, two writers share one
database."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from devicebench.results.store import Store

from conftest import cli_env

ARGS = ["infer", "tinycnn-tiny", "--device", "cpu", "--quick", "--min-time", "0.05", "--max-time", "0.2"]


def _start(db: Path, *extra: str, batches: str = "1,2,3,4") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "devicebench", *ARGS, "--batch-size", batches, "--db", str(db), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=cli_env(),
    )


def _stored(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM records").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0  # not created yet


def _wait_for_records(proc: subprocess.Popen[str], db: Path, n: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while _stored(db) < n:
        assert proc.poll() is None, f"finished before the signal: {proc.communicate()}"
        assert time.monotonic() < deadline, "no record stored in time"
        time.sleep(0.2)


def _workers(proc: subprocess.Popen[str]) -> list[psutil.Process]:
    try:
        return psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _gone(processes: list[psutil.Process], timeout: float = 15) -> bool:
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    return not alive


def test_sigint_and_sigterm_keep_finished_results(tmp_path: Path) -> None:
    runs = {}
    for sig in (signal.SIGINT, signal.SIGTERM):  # both at once: the test takes the time of one
        db, out = tmp_path / f"{sig.name}.db", tmp_path / f"{sig.name}.json"
        runs[sig] = (_start(db, "--json", str(out)), db, out)
    for sig, (proc, db, out) in runs.items():
        _wait_for_records(proc, db, 1)
        workers = _workers(proc)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == (130 if sig == signal.SIGINT else 143), err
        assert "interrupted: " in err and "Traceback" not in err, err
        assert _gone(workers), "the worker outlived the interrupted parent"
        with Store(db) as store:
            (run,) = store.runs()
            records = store.records(run.run_id)
        assert run.status == "interrupted"
        assert 1 <= len(records) < 4 and all(r.ok for r in records)
        doc = json.loads(out.read_text())
        assert doc["partial"] is True and doc["run"]["status"] == "interrupted"
        assert [r["record_id"] for r in doc["records"]] == [r.record_id for r in records]


def test_kill_9_loses_only_the_configuration_in_flight(tmp_path: Path) -> None:
    db = tmp_path / "killed.db"
    proc = _start(db)
    _wait_for_records(proc, db, 1)
    workers = _workers(proc)
    proc.kill()
    proc.communicate(timeout=30)
    assert _gone(workers), "the worker outlived its killed parent"
    with Store(db) as store:  # readable, every committed record kept
        (run,) = store.runs()
        kept = store.records(run.run_id)
    assert run.status == "running"  # nobody could mark it: it says so
    assert 1 <= len(kept) < 4 and all(r.ok for r in kept)
    assert _stored(db) == len(kept)


def test_two_processes_writing_one_database_keep_all_results(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    procs = [_start(db, batches="1,2"), _start(db, batches="3")]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    with Store(db) as store:
        runs = store.runs()
        assert len(runs) == 2 and all(r.status == "complete" for r in runs)
        for run in runs:
            assert [r.batch_size for r in store.records(run.run_id)] in ([1, 2], [3])
