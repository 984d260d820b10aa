"""Warm-up and adaptive stopping around a device timer; raw samples are kept.

The loop itself does nothing between two timed calls but append a number and, at sample
counts that grow geometrically (:func:`~devicebench.measure.stats.next_check`), check the
interval of the median with the stopping test of :mod:`.stats`, and (at most once a second, see
:mod:`.progress`) report how far it is. The garbage collector is paused while timing (as
``timeit`` does) so that a collection of the harness's own objects never lands in a sample.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from devicebench.devices.timers import Timer
from devicebench.measure.config import TimingPolicy
from devicebench.measure.progress import Progress, installed
from devicebench.measure.stats import Summary, median_ci, median_within, next_check

#: Other programs using more than this many cores' worth of CPU while a configuration was
#: measured make its timing suspect (a warning in tables, a named cause in comparisons).
BUSY_CORES = 0.25

__all__ = ["BUSY_CORES", "TimingRun", "warm_up", "measure_adaptive"]

#: The fewest samples a time cap may stop at: fewer give no usable statistics.
MIN_SAMPLES_AT_CAP = 3


@dataclass
class TimingRun:
    """Raw samples of one timed loop and why it stopped."""

    samples_ms: list[float]
    warmup_iters: int
    warmup_s: float
    elapsed_s: float
    stop_reason: str  # "ci_target" | "time_cap" | "max_iters"
    timer: str
    warmup_samples_ms: list[float] = field(default_factory=list)
    other_cpu_load: float | None = None  # cores' worth of CPU used by other processes meanwhile
    #: The samples summarised where they were measured (:meth:`summarise`, after the loop): the
    #: run's parent then builds the record without importing numpy between two configurations.
    summary: Summary | None = None

    def summarise(self, min_iters: int) -> Summary:
        """:meth:`Summary.from_samples` of the kept samples, flagged cut short when the time
        cap stopped the loop before ``min_iters`` samples.

        Raises:
            ValueError: no samples.
        """
        return Summary.from_samples(self.samples_ms,
                                    cut_short=self.stop_reason == "time_cap" and len(self.samples_ms) < min_iters)


def _cpu_snapshot() -> tuple[float, float] | None:
    """(CPU seconds all processes were busy, CPU seconds of this process), or None."""
    import psutil

    try:
        total = psutil.cpu_times()
        busy = sum(total) - total.idle - getattr(total, "iowait", 0.0) - getattr(total, "steal", 0.0)
        own = psutil.Process().cpu_times()
        return busy, own.user + own.system
    except (OSError, psutil.Error):
        return None


def _other_load(before: tuple[float, float] | None, after: tuple[float, float] | None, wall_s: float) -> float | None:
    # CPU time the rest of the machine used while we measured, in cores: a busy machine
    # makes multi-threaded CPU results many times slower, and this says so.
    if before is None or after is None or wall_s <= 0:
        return None
    others = (after[0] - before[0]) - (after[1] - before[1])
    return round(max(0.0, others) / wall_s, 3)


def warm_up(timer: Timer, fn: Callable[[], object], policy: TimingPolicy) -> tuple[list[float], float]:
    """Run ``fn`` until the warm-up rule of ``policy`` is met; returns its samples (ms) and time."""
    samples: list[float] = []
    reporter = installed()
    start = time.perf_counter()
    while True:
        samples.append(timer.time_ns(fn) / 1e6)
        elapsed = time.perf_counter() - start
        if reporter is not None and reporter.due():  # outside the timed call
            reporter.send(Progress("warmup", len(samples), elapsed, None, policy.warmup_max_s))
        done = len(samples) >= policy.warmup_iters and elapsed >= policy.warmup_s
        if done or elapsed >= policy.warmup_max_s:
            return samples, elapsed


def _progress(phase: str, samples: list[float], elapsed: float, policy: TimingPolicy) -> Progress:
    rel = None
    if len(samples) >= 3:
        import numpy as np

        lo, hi = median_ci(samples)
        median = float(np.median(samples))
        rel = round(max(median - lo, hi - median) / median, 4) if median > 0 else None
    return Progress(phase, len(samples), round(elapsed, 3), rel, policy.max_time_s)



def measure_adaptive(
    timer: Timer,
    fn: Callable[[], object],
    policy: TimingPolicy,
    *,
    warmup: bool = True,
    phase: str = "measure",
) -> TimingRun:
    """Warm up, then time ``fn`` until the policy says stop.

    Stops when (samples >= min_iters AND time >= min_time_s AND the median's 99% interval is
    within ``target_rel_ci`` of it), or at ``max_time_s`` (once there are at least 3 samples),
    or at ``max_iters``. The interval is looked at only at geometrically growing counts (the
    first count past the minimums, then ~10% more each time): with a wider interval for the
    decision than the 95% one reported, this keeps the reported interval's coverage at 95%
    (docs/how-we-measure.md). Progress (``phase``, samples, elapsed, interval width)
    goes to the installed reporter between two timed calls, at most once a second.
    """
    warm_samples, warm_s = warm_up(timer, fn, policy) if warmup else ([], 0.0)
    samples: list[float] = []
    append = samples.append
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    cpu_before = _cpu_snapshot()
    reporter = installed()
    check_at = policy.min_iters
    try:
        start = time.perf_counter()
        while True:
            append(timer.time_ns(fn) / 1e6)
            n = len(samples)
            elapsed = time.perf_counter() - start
            if reporter is not None and reporter.due():  # outside the timed call, <= 1/s
                reporter.send(_progress(phase, samples, elapsed, policy))
            if n >= policy.max_iters:
                reason = "max_iters"
                break
            if elapsed >= policy.max_time_s and n >= MIN_SAMPLES_AT_CAP:
                reason = "time_cap"
                break
            if n >= check_at and elapsed >= policy.min_time_s:
                check_at = next_check(n)
                if median_within(samples, policy.target_rel_ci):
                    reason = "ci_target"
                    break
    finally:
        if gc_was_enabled:
            gc.enable()
    other_load = _other_load(cpu_before, _cpu_snapshot(), elapsed)
    return TimingRun(
        samples_ms=samples,
        warmup_iters=len(warm_samples),
        warmup_s=warm_s,
        elapsed_s=elapsed,
        stop_reason=reason,
        timer=timer.name,
        warmup_samples_ms=warm_samples,
        other_cpu_load=other_load,
    )
