"""The command line's headline promises, observed from inside the workers (promise_probe.Probe):
one fresh process per configuration, exit 1 when a configuration fails, pickles refused
unless ``--trust-pickle``. See docs/testing.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from promise_probe import calls, probe_env, save_probe, unpickled_by

from devicebench.results.store import Store

pytestmark = pytest.mark.slow  # many worker processes; still run by default (docs/testing.md)

FAST = ["--device", "cpu", "--quick", "--min-time", "0.05", "--max-time", "0.2", "--input-shape", "1,8"]


def _infer(model: Path, *args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "devicebench", "infer", str(model), *FAST, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                            env=probe_env(), cwd=cwd)


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


def test_each_configuration_is_measured_in_its_own_fresh_process(tmp_path: Path) -> None:
    folder = tmp_path / "probe"
    model = save_probe(folder)
    proc = _infer(model, "--trust-pickle", "--batch-size", "1,2,3", "--json", str(tmp_path / "o.json"), "--no-db",
                  cwd=tmp_path)
    code, _, err = _finish(proc)
    assert code == 0, err
    seen = calls(folder)
    # Each configuration was measured by one process, a different one each time, never the parent.
    assert sorted(b for _, b in seen) == [1, 2, 3], seen
    pids = [p for p, _ in seen]
    assert len(set(pids)) == 3, f"configurations shared a process: {seen}"
    assert proc.pid not in pids
    # The model was loaded only in those workers: the parent never unpickled it.
    assert unpickled_by(folder) == set(pids)
    assert [r["status"] for r in json.loads((tmp_path / "o.json").read_text())["records"]] == ["ok"] * 3


def test_a_failed_or_crashed_configuration_exits_1_and_is_recorded(tmp_path: Path) -> None:
    folder = tmp_path / "probe"
    model = save_probe(folder, fail_batch=2, crash_batch=3)
    db, out = tmp_path / "r.db", tmp_path / "o.json"
    code, _, err = _finish(_infer(model, "--trust-pickle", "--batch-size", "1,2,3", "--db", str(db),
                                  "--json", str(out), cwd=tmp_path))
    assert code == 1, err  # README: 1 = a configuration failed (error or crash)
    assert "Traceback" not in err
    doc = json.loads(out.read_text())
    statuses = {r["batch_size"]: r["status"] for r in doc["records"]}
    assert statuses == {1: "ok", 2: "error", 3: "crashed"}, statuses
    by_batch = {r["batch_size"]: r for r in doc["records"]}
    assert "fails at batch 2 on purpose" in by_batch[2]["message"]
    assert "exit status 3" in by_batch[3]["message"]
    assert doc["partial"] is False  # every configuration has its record: failures are results
    with Store(db) as store:
        (run,) = store.runs()
        assert sorted(r.status for r in store.records(run.run_id)) == ["crashed", "error", "ok"]


def test_a_pickled_model_is_refused_without_trust_pickle_and_loaded_with_it(tmp_path: Path) -> None:
    folder = tmp_path / "probe"
    model = save_probe(folder)
    code, out, err = _finish(_infer(model, "--batch-size", "1", "--no-db", cwd=tmp_path))
    assert code == 2, err
    assert "Inference time" not in out  # nothing was measured
    assert err.count("\n") == 1 and "Traceback" not in err and "--trust-pickle" in err, err
    assert not (folder / "unpickled.log").exists(), "the pickle was unpickled without --trust-pickle"
    assert calls(folder) == []

    proc = _infer(model, "--trust-pickle", "--batch-size", "1", "--no-db", cwd=tmp_path)
    code, _, err = _finish(proc)
    assert code == 0, err
    assert "unpickled in each worker" in err  # the user is told what the flag does
    (pid,) = unpickled_by(folder)
    assert pid != proc.pid and calls(folder) == [(pid, 1)]
