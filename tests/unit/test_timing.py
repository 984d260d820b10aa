"""Timing logic with a fake slow, asynchronous device, and the adaptive stopping rules."""

from __future__ import annotations

import threading
import time

import psutil
import pytest

from devicebench.devices.timers import PerfCounterTimer
from devicebench.errors import ConfigError
from devicebench.measure.config import TimingPolicy
from devicebench.measure.timing import measure_adaptive, warm_up


class FakeAsyncDevice:
    """Like a GPU: a launch returns at once, the work finishes later; synchronize waits."""

    def __init__(self, work_s: float) -> None:
        self.work_s = work_s
        self._done = threading.Event()
        self._done.set()

    def launch(self) -> None:
        self._done.clear()
        threading.Timer(self.work_s, self._done.set).start()

    def synchronize(self) -> None:
        self._done.wait()


def test_sync_inside_the_timed_region_counts_the_device_work() -> None:
    dev = FakeAsyncDevice(0.02)
    synced = PerfCounterTimer(sync=dev.synchronize).time_ns(dev.launch) / 1e6
    assert synced >= 18.0  # the 20 ms of device work is counted


def test_without_sync_an_async_device_looks_far_too_fast() -> None:
    # Relative to the synchronised time of the same work, measured here too: a loaded machine
    # slows the launch and the device alike, never by an absolute limit.
    dev = FakeAsyncDevice(0.05)
    synced = PerfCounterTimer(sync=dev.synchronize).time_ns(dev.launch) / 1e6
    unsynced = PerfCounterTimer().time_ns(dev.launch) / 1e6
    dev.synchronize()
    assert synced >= 45.0
    assert unsynced < 0.5 * synced  # what a naive harness would report


class ScriptedTimer:
    """Returns scripted durations (ns) without running anything slow."""

    name = "scripted"

    def __init__(self, values_ms: list[float]) -> None:
        self.values = values_ms
        self.calls = 0

    def time_ns(self, fn) -> int:  # type: ignore[no-untyped-def]
        fn()
        value = self.values[self.calls % len(self.values)]
        self.calls += 1
        return int(value * 1e6)


def test_stops_early_once_the_interval_is_tight() -> None:
    policy = TimingPolicy(warmup_iters=2, warmup_s=0, min_iters=10, min_time_s=0, max_time_s=30)
    timer = ScriptedTimer([10.0, 10.01, 9.99])
    run = measure_adaptive(timer, lambda: None, policy)
    assert run.stop_reason == "ci_target"
    assert len(run.samples_ms) >= 10  # never before min_iters
    assert len(run.samples_ms) < 100
    assert run.warmup_iters == 2


def test_noisy_work_runs_to_the_time_cap() -> None:
    policy = TimingPolicy(warmup_iters=0, warmup_s=0, min_iters=5, min_time_s=0, max_time_s=0.3)
    timer = ScriptedTimer([1.0, 50.0, 3.0, 200.0, 7.0])

    def slow() -> None:
        time.sleep(0.005)

    run = measure_adaptive(timer, slow, policy)
    assert run.stop_reason == "time_cap"
    assert run.elapsed_s >= 0.3


def test_minimum_time_is_respected_even_when_the_interval_is_tight() -> None:
    policy = TimingPolicy(warmup_iters=0, warmup_s=0, min_iters=3, min_time_s=0.2, max_time_s=5)
    run = measure_adaptive(ScriptedTimer([5.0]), lambda: time.sleep(0.002), policy)
    assert run.stop_reason == "ci_target"
    assert run.elapsed_s >= 0.2


def test_max_iters_caps_fast_work() -> None:
    policy = TimingPolicy(warmup_iters=0, warmup_s=0, min_iters=5, min_time_s=10, max_time_s=20, max_iters=50)
    run = measure_adaptive(ScriptedTimer([1.0]), lambda: None, policy)
    assert run.stop_reason == "max_iters"
    assert len(run.samples_ms) == 50


def test_time_cap_keeps_at_least_three_samples() -> None:
    policy = TimingPolicy(warmup_iters=0, warmup_s=0, min_iters=10, min_time_s=0, max_time_s=0.01)
    run = measure_adaptive(PerfCounterTimer(), lambda: time.sleep(0.02), policy)
    assert len(run.samples_ms) == 3
    assert all(s >= 19 for s in run.samples_ms)


def test_warm_up_needs_both_iterations_and_time_but_is_capped() -> None:
    policy = TimingPolicy(warmup_iters=3, warmup_s=0.1, warmup_max_s=1.0)
    samples, elapsed = warm_up(PerfCounterTimer(), lambda: time.sleep(0.01), policy)
    assert len(samples) >= 3 and elapsed >= 0.1
    capped = TimingPolicy(warmup_iters=100, warmup_s=0, warmup_max_s=0.05)
    samples, elapsed = warm_up(PerfCounterTimer(), lambda: time.sleep(0.02), capped)
    assert len(samples) < 10


@pytest.mark.parametrize(
    "kwargs",
    [dict(min_iters=0), dict(max_time_s=0), dict(min_time_s=5, max_time_s=1), dict(target_rel_ci=0),
     dict(warmup_iters=-1), dict(min_iters=10, max_iters=5)],
)
def test_bad_policies_are_refused(kwargs) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError):
        TimingPolicy(**kwargs)


def _cpu_busy_s() -> float:
    """CPU seconds the whole machine has been busy (psutil, read here apart from the code)."""
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "steal", 0.0)


def _own_cpu_s() -> float:
    t = psutil.Process().cpu_times()
    return t.user + t.system


def _measure_with_truth(fn, policy):  # type: ignore[no-untyped-def]
    """measure_adaptive, and the other processes' CPU use over the same window, read apart."""
    wall, busy, own = time.perf_counter(), _cpu_busy_s(), _own_cpu_s()
    run = measure_adaptive(PerfCounterTimer(), fn, policy, warmup=False)
    wall, busy, own = time.perf_counter() - wall, _cpu_busy_s() - busy, _own_cpu_s() - own
    return run, max(0.0, busy - own) / wall, own / wall


def _spin_for(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_cpu_used_by_other_processes_is_measured() -> None:
    import multiprocessing as mp

    policy = TimingPolicy(warmup_iters=0, warmup_s=0, min_iters=5, min_time_s=0.6, max_time_s=0.6)
    # Quiet control: no hog, and this process itself busy (it spins in the timed call): its
    # own CPU time is not "other programs", whatever the rest of the machine does meanwhile.
    quiet, quiet_truth, own_cores = _measure_with_truth(lambda: _spin_for(0.01), policy)
    assert own_cores > 0.05, own_cores  # the control did load this process
    assert quiet.other_cpu_load is not None
    # Counting this process's CPU as other programs' would be off by own_cores.
    assert abs(quiet.other_cpu_load - quiet_truth) < 0.5 * own_cores + 0.05, (quiet.other_cpu_load, quiet_truth, own_cores)

    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    hog = ctx.Process(target=_spin, args=(stop,))
    hog.start()
    try:
        time.sleep(0.5)  # let it start spinning
        hog_cpu = psutil.Process(hog.pid).cpu_times()
        start = time.perf_counter()
        busy, busy_truth, _ = _measure_with_truth(lambda: time.sleep(0.01), policy)
        hog_after = psutil.Process(hog.pid).cpu_times()
        hog_cores = (hog_after.user + hog_after.system - hog_cpu.user - hog_cpu.system) / (time.perf_counter() - start)
    finally:
        stop.set()
        hog.join()
    assert busy.other_cpu_load is not None
    # The hog's own CPU time (read from the hog process) is counted as other programs' use.
    assert busy.other_cpu_load >= 0.8 * hog_cores - 0.05, (busy.other_cpu_load, hog_cores)
    assert abs(busy.other_cpu_load - busy_truth) <= 0.25 + 0.1 * busy_truth, (busy.other_cpu_load, busy_truth)


def _spin(stop) -> None:  # type: ignore[no-untyped-def]
    while not stop.is_set():
        pass
