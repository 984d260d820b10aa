"""What a run pays beyond warming up and measuring (issue 14, point 2): each cut is held here."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from devicebench.measure import inference
from devicebench.measure.config import InferenceConfig, TimingPolicy

FAST = TimingPolicy(warmup_iters=1, warmup_s=0, min_iters=3, min_time_s=0.01, max_time_s=0.2)


def test_a_worker_freezes_what_it_held_before_its_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    # The collection before each timed loop walked every object of the fork server's imports
    # (0.2-0.3 s a loop with torch, torchvision and transformers); frozen, it walks only the
    # configuration's own.
    held_before = [object()]  # a container the collector tracks
    seen: dict[str, object] = {}

    def measure(config: InferenceConfig) -> str:
        seen["frozen"] = gc.get_freeze_count()
        seen["walked"] = any(o is held_before for o in gc.get_objects())
        made_now = [object()]
        seen["own_walked"] = any(o is made_now for o in gc.get_objects())
        return "outcome"

    monkeypatch.setattr(inference, "measure_inference", measure)
    try:
        assert inference.measure_in_worker(InferenceConfig("tinycnn-tiny", "cpu", policy=FAST)) == "outcome"
    finally:
        gc.unfreeze()
    assert seen == {"frozen": seen["frozen"], "walked": False, "own_walked": True}
    assert isinstance(seen["frozen"], int) and seen["frozen"] > 0


def test_the_runs_workers_start_with_the_freezing_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    from devicebench.launchers.process import WorkerResult
    from devicebench.run import inference as run_inference

    called = []

    def fake_run_in_worker(func, arg, **kwargs):  # type: ignore[no-untyped-def]
        called.append(func)
        return WorkerResult(ok=False, error="not run", detail="")

    monkeypatch.setattr(run_inference, "run_in_worker", fake_run_in_worker)
    record = run_inference.measure_one("run", InferenceConfig("tinycnn-tiny", "cpu", policy=FAST))
    assert called == [inference.measure_in_worker]
    assert record.status == "crashed"


def test_an_outcome_unpickles_without_torch(tmp_path: Path) -> None:
    # The parent reads each worker's answer: a torch type inside it (torch.__version__ is a
    # TorchVersion) imported torch in the parent, 1.8 CPU-s after the first configuration.
    # (Fixed on main by the coordinator too; this holds the whole outcome to it.)
    import pickle
    import subprocess
    import sys

    outcome = inference.measure_inference(InferenceConfig("tinycnn-tiny", "cpu", policy=FAST))
    assert outcome.status == "ok", outcome.message
    path = tmp_path / "answer.pkl"
    path.write_bytes(pickle.dumps(("ok", outcome, "")))
    # ...and the record is built from it without numpy either: the worker summarised its samples
    # (the parent imported numpy for that after the first configuration: 0.1 s before the next).
    code = ("import pickle, sys; _, o, _ = pickle.load(open(sys.argv[1], 'rb')); "
            "from devicebench.measure.config import InferenceConfig; "
            "from devicebench.results.records import InferenceRecord; "
            "r = InferenceRecord.from_outcome('run', InferenceConfig('tinycnn-tiny', 'cpu'), o); "
            "assert r.latency_ms.n == len(o.compute.samples_ms); "
            "print(type(o).__name__, o.environment.torch, 'torch' in sys.modules, 'numpy' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    name, version, torch_loaded, numpy_loaded = done.stdout.split()
    assert (name, torch_loaded, numpy_loaded) == ("InferenceOutcome", "False", "False")
    assert version == str(outcome.environment.torch)


def test_a_configuration_measured_in_a_worker_has_its_whole_timeline() -> None:
    # What bench_config_overhead.py reads: every moment, in order, around the measured time.
    from devicebench.run.inference import execute

    _, (record,) = execute([InferenceConfig("tinycnn-tiny", "cpu", policy=FAST)], command="test")
    assert record.status == "ok", record.message
    line = record.timeline or {}
    order = ["requested", "worker_start", "first_call_start", "loop_end", "worker_end", "answered"]
    assert sorted(line, key=line.get) == order, line
    assert record.timing.warmup_s is not None and record.timing.elapsed_s is not None
    assert line["loop_end"] - line["first_call_start"] >= record.timing.warmup_s + record.timing.elapsed_s


def test_a_record_keeps_its_timeline_and_an_older_one_has_none() -> None:
    from devicebench.results.records import InferenceRecord
    from devicebench.results.validate import check_fields

    config = InferenceConfig("tinycnn-tiny", "cpu", policy=FAST)
    outcome = inference.measure_inference(config)
    assert list(outcome.timeline) == ["worker_start", "first_call_start", "loop_end", "worker_end"]
    assert sorted(outcome.timeline.values()) == list(outcome.timeline.values())
    compute = outcome.compute
    assert compute is not None
    assert outcome.timeline["loop_end"] - outcome.timeline["first_call_start"] >= compute.warmup_s + compute.elapsed_s
    record = InferenceRecord.from_outcome("run", config, outcome)
    data = record.to_dict()
    assert data["timeline"] == outcome.timeline
    check_fields(InferenceRecord.from_dict(data))
    assert InferenceRecord.from_dict(data).timeline == outcome.timeline
    del data["timeline"]  # a file written before the field existed
    assert InferenceRecord.from_dict(data).timeline is None


def test_a_failed_configuration_has_a_timeline_too() -> None:
    outcome = inference.measure_inference(InferenceConfig("tinycnn-tiny", "cpu", weights="/nonexistent.pt", policy=FAST))
    assert outcome.status == "error"
    assert list(outcome.timeline) == ["worker_start", "worker_end"]


def test_the_command_leaves_its_objects_to_the_os_at_exit() -> None:
    # The exit's collections walked every object the command had imported (0.15 s for a run's
    # parent, twice that with torch); frozen first, they skip them.
    import subprocess
    import sys

    code = ("import atexit, gc, runpy, sys; atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0)); "
            "sys.argv = ['devicebench', 'models']; runpy.run_module('devicebench', run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resnet50" in done.stdout and done.stdout.rstrip().endswith("frozen True")


def test_the_installed_command_is_the_one_that_freezes() -> None:
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["devicebench"] == "devicebench.__main__:console"
    from devicebench.__main__ import console  # importing it runs nothing

    assert callable(console)


def test_the_tuners_workers_start_with_the_freezing_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tuning screens a dozen candidates per device, each in a worker: 0.3 s each.
    from devicebench.devices.discovery import DeviceSpec
    from devicebench.launchers.process import WorkerResult
    from devicebench.run.tuning import tuner

    called = []

    def fake_run_in_worker(func, arg, **kwargs):  # type: ignore[no-untyped-def]
        called.append(func)
        return WorkerResult(ok=False, error="not run", detail="")

    monkeypatch.setattr(tuner, "run_in_worker", fake_run_in_worker)
    session = tuner._Session(tuner.TuneRequest("tinycnn-tiny", (DeviceSpec("cpu"),)), fake_run_in_worker,
                             ctx=None, cache=None, on_event=None)  # type: ignore[arg-type]
    session.call(inference.measure_inference, InferenceConfig("tinycnn-tiny", "cpu", policy=FAST))
    session.call(len, [])  # anything else is called as it is
    assert called == [inference.measure_in_worker, len]


def test_the_workers_summary_is_the_one_the_parent_would_make() -> None:
    from devicebench.measure.stats import Summary
    from devicebench.results.records import InferenceRecord

    config = InferenceConfig("tinycnn-tiny", "cpu", policy=FAST)
    outcome = inference.measure_inference(config)
    assert outcome.compute is not None and outcome.compute.summary is not None
    record = InferenceRecord.from_outcome("run", config, outcome)
    cut_short = outcome.compute.stop_reason == "time_cap" and len(outcome.compute.samples_ms) < FAST.min_iters
    assert record.latency_ms == Summary.from_samples(outcome.compute.samples_ms, cut_short=cut_short)
    outcome.compute.summary = None  # an outcome from before: summarised here, the same
    assert InferenceRecord.from_outcome("run", config, outcome).latency_ms == record.latency_ms
    # Samples changed after the worker summarised them (a stand-in runner scaling them, as a
    # test does to play a GPU): the stale summary is not used, the samples are summarised again.
    outcome.compute.summary = record.latency_ms
    outcome.compute.samples_ms = [s / 100 for s in outcome.compute.samples_ms]
    rescaled = InferenceRecord.from_outcome("run", config, outcome).latency_ms
    assert rescaled == Summary.from_samples(outcome.compute.samples_ms, cut_short=cut_short)
    assert rescaled.median == pytest.approx(record.latency_ms.median / 100)
