"""Nothing measured is lost: Ctrl-C and SIGTERM keep every finished result (store and JSON,
marked partial), kill -9 loses only the configuration in flight, two writers share one
database; for `infer`, `run`, `train` and `compare()`.

No race with the machine's load: the inference runs measure promise_probe.Probe, which blocks
at batch 3 (it writes ``blocked`` and sleeps), so when the signal is sent exactly two
configurations are finished and stored and the run cannot have ended; each test checks that
state before it signals. Training runs ask for far more epochs than can pass in the test.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import cli_env
from promise_probe import calls, probe_env, save_probe

from devicebench.results.store import Store

pytestmark = pytest.mark.slow  # many worker processes; still run by default (docs/testing.md)

FAST = ["--device", "cpu", "--quick", "--min-time", "0.05", "--max-time", "0.2"]
ARGS = ["infer", "tinycnn-tiny", *FAST]


#: Every command a test started: whatever still runs when the test ends (it failed half-way)
#: is killed with its descendants, so that a blocked probe never outlives its test.
_STARTED: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_process_outlives_its_test():  # type: ignore[no-untyped-def]
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is not None:
            continue
        try:
            tree = [*psutil.Process(proc.pid).children(recursive=True), psutil.Process(proc.pid)]
        except psutil.Error:
            tree = []
        for p in tree:
            try:
                p.kill()
            except psutil.Error:
                pass
        proc.communicate(timeout=30)


def _start(db: Path, *extra: str, batches: str = "1,2,3,4") -> subprocess.Popen[str]:
    return _popen([sys.executable, "-m", "devicebench", *ARGS, "--batch-size", batches, "--db", str(db), *extra],
                  cwd=Path.cwd(), env=cli_env())


def _popen(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            text=True, env=env or probe_env(), cwd=cwd)
    _STARTED.append(proc)
    return proc


def _start_blocking_infer(folder: Path, db: Path, *extra: str) -> subprocess.Popen[str]:
    """`devicebench infer probe.pt` at batch 1..4: 1 and 2 finish, 3 blocks forever."""
    model = save_probe(folder, block_batch=3)
    return _popen([sys.executable, "-m", "devicebench", "infer", str(model), "--trust-pickle", "--input-shape", "1,8",
                   *FAST, "--batch-size", "1,2,3,4", "--db", str(db), *extra], cwd=folder)


def _query(db: Path, sql: str) -> list[tuple]:  # type: ignore[type-arg]
    if not db.exists():
        return []
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return []  # not created yet


def _stored(db: Path) -> int:
    rows = _query(db, "SELECT COUNT(*) FROM records")
    return int(rows[0][0]) if rows else 0


def _until(proc: subprocess.Popen[str], condition, what: str, timeout: float = 240) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"ended before {what}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"no {what} in {timeout} s"
        time.sleep(0.2)


def _blocked(proc: subprocess.Popen[str], folder: Path, db: Path | None) -> psutil.Process:
    """Wait until batch 3 blocks; check the run is mid-way (2 stored, still running); its worker."""
    _until(proc, (folder / "blocked").exists, "blocked configuration")
    if db is not None:
        assert _stored(db) == 2
    assert proc.poll() is None, "the run ended before the signal"
    worker = psutil.Process(int((folder / "blocked").read_text()))
    assert worker.is_running()
    return worker


def _gone(process: psutil.Process, timeout: float = 20) -> bool:
    _, alive = psutil.wait_procs([process], timeout=timeout)
    return not alive


def _check_interrupted(db: Path, out: Path | None, n: int = 2) -> None:
    with Store(db) as store:
        (run,) = store.runs()
        records = store.records(run.run_id)
    assert run.status == "interrupted"
    assert [r.batch_size for r in records] == [1, 2][:n] and all(r.ok for r in records)
    if out is not None:
        doc = json.loads(out.read_text())
        assert doc["partial"] is True and doc["run"]["status"] == "interrupted"
        assert [r["record_id"] for r in doc["records"]] == [r.record_id for r in records]


def test_infer_interrupted_or_killed_keeps_finished_results(tmp_path: Path) -> None:
    # Three runs at once (the test takes the time of one): SIGINT, SIGTERM, kill -9.
    runs = {}
    for how in ("SIGINT", "SIGTERM", "KILL"):
        folder = tmp_path / how
        runs[how] = (_start_blocking_infer(folder, folder / "r.db", "--json", str(folder / "r.json")), folder)
    workers = {how: _blocked(proc, folder, folder / "r.db") for how, (proc, folder) in runs.items()}
    for how, (proc, _) in runs.items():
        proc.send_signal(getattr(signal, how if how != "KILL" else "SIGKILL"))
    for how, (proc, folder) in runs.items():
        _, err = proc.communicate(timeout=60)
        assert _gone(workers[how]), f"the worker outlived its {how} parent"
        assert sorted(b for _, b in calls(folder)) == [1, 2, 3]  # batch 4 never started
        if how == "KILL":
            with Store(folder / "r.db") as store:  # readable, every committed record kept
                (run,) = store.runs()
                kept = store.records(run.run_id)
            assert run.status == "running"  # nobody could mark it: it says so
            assert [r.batch_size for r in kept] == [1, 2] and all(r.ok for r in kept)
            assert not (folder / "r.json").exists()
            continue
        assert proc.returncode == {"SIGINT": 130, "SIGTERM": 143}[how], err
        assert "interrupted: 2 finished configuration(s) kept" in err and "Traceback" not in err, err
        _check_interrupted(folder / "r.db", folder / "r.json")


_RUN_SCRIPT = """
import sys
import devicebench.run.inference as runner
from devicebench.cli import main
from devicebench.measure.config import TimingPolicy
from devicebench.workloads.userfile import UserModelSpec

POLICY = TimingPolicy(warmup_iters=1, warmup_s=0.0, min_iters=3, min_time_s=0.05, max_time_s=0.2)

def probe_suite(devices, *, quick=False, threads=None):
    spec = UserModelSpec(path=sys.argv[1], trust_pickle=True, input_shapes=((1, 8),))
    return runner.plan_user_model(spec, devices, (1, 2, 3, 4), threads=threads, policy=POLICY)

runner.plan_suite = probe_suite  # `devicebench run` with the probe as its suite
sys.exit(main(["run", "--devices", "cpu", "--no-train", *sys.argv[2:]]))
"""


def test_run_interrupted_keeps_finished_results(tmp_path: Path) -> None:
    folder, db, out = tmp_path / "probe", tmp_path / "run.db", tmp_path / "run.json"
    model = save_probe(folder, block_batch=3)
    script = tmp_path / "run_probe.py"
    script.write_text(_RUN_SCRIPT)
    proc = _popen([sys.executable, str(script), str(model), "--db", str(db), "--json", str(out)], cwd=tmp_path)
    worker = _blocked(proc, folder, db)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted: 2 finished configuration(s) kept" in err, err
    assert _gone(worker)
    _check_interrupted(db, out)


_COMPARE_SCRIPT = """
import signal
import sys
import devicebench as db

# Ctrl-C as a terminal delivers it, whatever disposition the harness that started this
# script had (a SIGINT ignored there would be inherited, and Python then ignores it too).
signal.signal(signal.SIGINT, signal.default_int_handler)

db.compare(sys.argv[1], devices="cpu", batch_sizes=[1, 2, 3, 4], input_shape=(1, 8), trust_pickle=True,
           quick=True, max_time=0.2, db=sys.argv[2], json_path=sys.argv[3])
print("compare() returned")
"""


def test_compare_interrupted_keeps_finished_results(tmp_path: Path) -> None:
    script = tmp_path / "compare_probe.py"
    script.write_text(_COMPARE_SCRIPT)
    runs = {}
    for sig in (signal.SIGINT, signal.SIGTERM):  # both at once
        folder = tmp_path / sig.name
        model = save_probe(folder, block_batch=3)
        runs[sig] = (_popen([sys.executable, str(script), str(model), str(folder / "api.db"), str(folder / "api.json")],
                            cwd=tmp_path), folder)
    workers = {sig: _blocked(proc, folder, folder / "api.db") for sig, (proc, folder) in runs.items()}
    for sig, (proc, _) in runs.items():
        proc.send_signal(sig)
    for sig, (proc, folder) in runs.items():
        stdout, err = proc.communicate(timeout=60)
        assert "compare() returned" not in stdout
        assert _gone(workers[sig]), "the worker outlived the interrupted script"
        if sig == signal.SIGINT:
            # Ctrl-C: KeyboardInterrupt leaves compare() once the run is marked and the JSON written.
            assert "KeyboardInterrupt" in err, err
            _check_interrupted(folder / "api.db", folder / "api.json")
        else:
            # SIGTERM ends a Python script at once (a handler for it is the script's business):
            # what was committed stays in the store, as after kill -9.
            assert proc.returncode == -signal.SIGTERM
            with Store(folder / "api.db") as store:
                (run,) = store.runs()
                assert [r.batch_size for r in store.records(run.run_id)] == [1, 2]


def _training_epochs(db: Path) -> int:
    rows = _query(db, "SELECT data FROM records WHERE kind = 'training'")
    return max((len(json.loads(r[0]).get("epochs") or []) for r in rows), default=0)


def test_train_interrupted_keeps_finished_epochs(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "set"
    made = run_cli("data", "make-synthetic", str(data), "--classes", "2", "--train-per-class", "8",
                   "--val-per-class", "2", "--size", "16")
    assert made.returncode == 0, made.stderr
    runs = {}
    for sig in (signal.SIGINT, signal.SIGTERM):  # both at once
        db, out = tmp_path / f"{sig.name}.db", tmp_path / f"{sig.name}.json"
        proc = _popen([sys.executable, "-m", "devicebench", "train", "--data", str(data), "--model", "tinycnn-tiny",
                       "--epochs", "500", "--device", "cpu", "--batch-size", "8", "--image-size", "16",
                       "--workers", "0", "--checkpoint-dir", str(tmp_path / sig.name), "--db", str(db),
                       "--json", str(out)], cwd=tmp_path,
                          # The worker must be a descendant of the command to be found below: with
                          # a warm server running it would be that server's (its stop on a signal
                          # is tests/unit/test_warmserver.py's).
                          env=cli_env(DEVICEBENCH_LAUNCHER="fork"))
        runs[sig] = (proc, db, out)
    workers = {}
    for sig, (proc, db, _) in runs.items():
        _until(proc, lambda: _training_epochs(db) >= 1, "finished epoch")  # noqa: B023 - called at once
        assert proc.poll() is None, "training ended before the signal"
        workers[sig] = psutil.Process(proc.pid).children(recursive=True)
        assert workers[sig], "no training worker"
    for sig, (proc, _, _) in runs.items():
        proc.send_signal(sig)
    for sig, (proc, db, out) in runs.items():
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == (130 if sig == signal.SIGINT else 143), err
        assert "Traceback" not in err, err
        _, alive = psutil.wait_procs(workers[sig], timeout=20)
        assert not alive, "the training worker outlived the interrupted parent"
        with Store(db) as store:
            (run,) = store.runs()
            (record,) = store.raw_records(run.run_id, "training")
        assert run.status == "interrupted" and record["status"] == "interrupted"
        kept = len(record["epochs"])
        assert 1 <= kept < 500
        assert [e["epoch"] for e in record["epochs"]] == list(range(1, kept + 1))
        doc = json.loads(out.read_text())
        assert doc["partial"] is True and doc["run"]["status"] == "interrupted"
        assert len(doc["records"][0]["epochs"]) == kept


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


def _baseline_file(path: Path, data: Path, args: dict[str, object]) -> Path:
    """A finished one-process record for `train --nproc 2 --baseline` (so the test trains only
    the two ranks); its numbers do not matter here."""
    from devicebench.devices.discovery import DeviceRef
    from devicebench.measure.training import EpochRow, TrainConfig
    from devicebench.results.records import TrainingRecord

    config = TrainConfig(data=str(data), device="cpu", **args)  # type: ignore[arg-type]
    epoch = EpochRow(epoch=1, train_loss=1.0, train_acc=0.5, val_loss=1.0, val_top1=0.5, val_top5=1.0, epoch_s=1.0,
                     samples_per_s=16.0, data_wait_s=0.1, compute_s=0.9, wall_s=1.0, steps=2)
    record = TrainingRecord(model=config.model, device=DeviceRef("cpu", None, "cpu"), batch_size=config.batch_size,
                            precision="fp32", status="ok", epochs=[epoch], settings=config.settings())
    path.write_text(json.dumps({"records": [record.to_dict()]}))
    return path


def test_train_nproc_terminated_stops_every_rank_and_keeps_finished_epochs(tmp_path: Path) -> None:
    """SIGTERM to `train --nproc 2` (devicebench's own rank launcher): every rank stops, rank
    0's finished epochs are kept in the store and the JSON, marked interrupted; exit 143."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("two gloo ranks need two cores")
    from devicebench.workloads.synthetic import make_synthetic

    data = make_synthetic(tmp_path / "set", classes=2, train_per_class=8, val_per_class=2, size=16)
    args = {"model": "tinycnn-tiny", "batch_size": 8, "image_size": 16, "loader": "memory", "workers": 0}
    baseline = _baseline_file(tmp_path / "single.json", data, args)
    db, out = tmp_path / "ddp.db", tmp_path / "ddp.json"
    proc = _popen([sys.executable, "-m", "devicebench", "train", "--nproc", "2", "--baseline", str(baseline),
                   "--data", str(data), "--model", "tinycnn-tiny", "--epochs", "500", "--device", "cpu",
                   "--batch-size", "8", "--image-size", "16", "--loader", "memory", "--workers", "0",
                   "--threads", "1", "--checkpoint-dir", str(tmp_path / "ckpt"), "--db", str(db), "--json", str(out)],
                  cwd=tmp_path, env=cli_env())
    _until(proc, lambda: _training_epochs(db) >= 1, "finished epoch")
    ranks = psutil.Process(proc.pid).children(recursive=True)
    assert sum("devicebench.launchers.ranks" in " ".join(p.cmdline()) for p in ranks) == 2, ranks
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 143, err
    assert "Traceback" not in err, err
    _, alive = psutil.wait_procs(ranks, timeout=20)
    assert not alive, "a rank outlived the terminated parent"
    with Store(db) as store:
        (run,) = store.runs()
        (record,) = store.raw_records(run.run_id, "training")
    assert run.status == "interrupted" and record["status"] == "interrupted"
    assert record["settings"]["nproc"] == 2
    kept = len(record["epochs"])
    assert 1 <= kept < 500
    doc = json.loads(out.read_text())
    assert doc["partial"] is True and len(doc["records"][0]["epochs"]) == kept
