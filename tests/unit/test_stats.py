"""Statistics against known distributions and known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from devicebench.measure.config import TimingPolicy
from devicebench.measure.stats import (
    STOP_CONFIDENCE,
    Summary,
    _median_ci_ranks,
    interval_level,
    median_ci,
    median_within,
    next_check,
    ratio_ci,
)


def test_summary_of_a_known_sequence() -> None:
    s = Summary.from_samples(list(range(1, 102)))  # 1..101
    assert s.n == 101
    assert s.median == 51
    assert s.mean == 51
    assert (s.min, s.max) == (1, 101)
    assert s.p90 == pytest.approx(91)
    assert s.p99 == pytest.approx(100)
    assert s.iqr == pytest.approx(50)
    assert s.stdev == pytest.approx(np.std(np.arange(1, 102), ddof=1))
    lo, hi = s.ci95
    assert lo < 51 < hi


def test_exact_median_ranks_match_tables() -> None:
    # Classic table values (1-based): n=10 -> x(2)..x(9); n=20 -> x(6)..x(15); n=100 -> x(40)..x(61)
    assert _median_ci_ranks(10) == (1, 8)
    assert _median_ci_ranks(20) == (5, 14)
    assert _median_ci_ranks(100) == (39, 60)


def test_normal_approximation_agrees_with_exact_at_the_switch() -> None:
    exact = _median_ci_ranks(300)
    approx = _median_ci_ranks(301)
    assert abs(exact[0] - approx[0]) <= 2


@pytest.mark.parametrize("n", [15, 60, 400])
def test_median_interval_covers_the_true_median(n: int) -> None:
    # Lognormal(0, 0.5): skewed like latencies; true median is exp(0) = 1.
    rng = np.random.default_rng(1)
    trials = 600
    hits = 0
    for _ in range(trials):
        lo, hi = median_ci(rng.lognormal(0.0, 0.5, size=n))
        hits += lo <= 1.0 <= hi
    coverage = hits / trials
    assert 0.92 <= coverage <= 0.995, coverage


def test_interval_narrows_with_more_samples() -> None:
    rng = np.random.default_rng(2)
    small = Summary.from_samples(rng.normal(10, 1, 30))
    large = Summary.from_samples(rng.normal(10, 1, 3000))
    assert large.rel_ci < small.rel_ci / 4


def test_noisy_flag() -> None:
    rng = np.random.default_rng(3)
    assert not Summary.from_samples(rng.normal(100, 1, 200)).noisy
    assert Summary.from_samples(rng.lognormal(0, 0.6, 200)).noisy
    assert Summary.from_samples([1.0, 1.0, 1.0]).noisy  # too few samples to trust


def test_bad_samples_are_refused() -> None:
    with pytest.raises(ValueError):
        Summary.from_samples([])
    with pytest.raises(ValueError):
        Summary.from_samples([1.0, math.nan])


def test_ratio_interval_contains_a_known_ratio() -> None:
    rng = np.random.default_rng(4)
    cpu = rng.lognormal(math.log(80), 0.05, 200)
    gpu = rng.lognormal(math.log(10), 0.05, 200)
    ratio, lo, hi = ratio_ci(cpu, gpu)
    assert ratio == pytest.approx(8.0, rel=0.03)
    assert lo < 8.0 < hi
    assert hi - lo < 0.5
    # Deterministic: the same inputs give the same interval.
    assert ratio_ci(cpu, gpu) == (ratio, lo, hi)


def test_summary_round_trips_through_dict() -> None:
    s = Summary.from_samples([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert Summary.from_dict(s.to_dict()) == s


# -- the stopping rule keeps the reported interval's coverage -----------------------------------

def _simulate_stops(rows: np.ndarray, min_iters: int, target: float, *, every_sample: bool = False,
                    confidence: float = STOP_CONFIDENCE) -> np.ndarray:
    """The sample count at which the stopping rule of measure_adaptive stops, for each row.

    The same functions the timing loop calls (``median_within`` at counts from
    ``next_check``), vectorised over rows; a row that never stops runs to its full length
    (the time cap). ``every_sample`` reproduces the old rule (95% interval, every sample).
    """
    reps, max_n = rows.shape
    stop = np.full(reps, max_n)
    active = np.ones(reps, dtype=bool)
    n = min_iters
    while n <= max_n and active.any():
        idx = np.flatnonzero(active)
        done = median_within(rows[idx, :n], target, confidence)
        stop[idx[done]] = n
        active[idx[done]] = False
        n = n + 1 if every_sample else next_check(n)
    return stop


def _coverage_at_stop(rows: np.ndarray, stop: np.ndarray, true_median: float) -> float:
    hits = 0
    for n in np.unique(stop):
        for row in rows[stop == n]:
            lo, hi = median_ci(row[:n])
            hits += lo <= true_median <= hi
    return hits / rows.shape[0]


def test_stopping_rule_keeps_95_percent_coverage_on_lognormal_samples() -> None:
    # Latency-like samples (lognormal, sigma 0.05: the median is known within 2% after ~100
    # samples); the true median is exp(0) = 1. The count-only worst case (min_time_s = 0):
    # the rule may look from the 10th sample on.
    policy = TimingPolicy()
    rng = np.random.default_rng(7)
    rows = rng.lognormal(0.0, 0.05, size=(4000, 400))
    stop = _simulate_stops(rows, policy.min_iters, policy.target_rel_ci)
    assert np.mean(stop < rows.shape[1]) > 0.99  # it does stop on the interval
    coverage = _coverage_at_stop(rows, stop, 1.0)
    # 4000 runs: standard error 0.0034; the nominal level minus 3 standard errors.
    assert coverage >= 0.94, coverage


def test_the_old_rule_lost_coverage() -> None:
    # What the issue measured: a 95% interval checked after every sample stops on lucky,
    # narrow intervals; its reported interval covers the median less often than 95%.
    rng = np.random.default_rng(7)
    rows = rng.lognormal(0.0, 0.05, size=(4000, 300))
    old = _simulate_stops(rows, 10, 0.02, every_sample=True, confidence=0.95)
    new = _simulate_stops(rows, 10, 0.02)
    assert _coverage_at_stop(rows, old, 1.0) < _coverage_at_stop(rows, new, 1.0) - 0.01


def test_the_timing_loop_stops_where_the_simulation_says() -> None:
    from devicebench.measure.timing import measure_adaptive

    class Scripted:
        name = "scripted"

        def __init__(self, values: np.ndarray) -> None:
            self.values, self.calls = values, 0

        def time_ns(self, fn) -> int:  # type: ignore[no-untyped-def]
            value = self.values[self.calls]
            self.calls += 1
            return round(value * 1e6)

    rng = np.random.default_rng(11)
    rows = np.round(rng.lognormal(0.0, 0.05, size=(5, 400)) * 1e6) / 1e6  # exact in ns
    policy = TimingPolicy(min_time_s=0.0, max_time_s=60.0, max_iters=400)
    expected = _simulate_stops(rows, policy.min_iters, policy.target_rel_ci)
    for row, n in zip(rows, expected):
        run = measure_adaptive(Scripted(row), lambda: None, policy, warmup=False)
        assert len(run.samples_ms) == n and run.stop_reason in ("ci_target", "max_iters")


def test_few_samples_are_flagged_with_their_real_level() -> None:
    five = Summary.from_samples([1.0, 1.1, 0.9, 1.05, 0.95])
    assert five.few_samples and five.noisy and five.flag == "few samples"
    assert five.ci95 == (0.9, 1.1) and five.ci_level == pytest.approx(1 - 2 / 32)
    assert Summary.from_samples([1.0, 1.1, 0.9]).ci_level == pytest.approx(0.75)
    six = Summary.from_samples([1.0, 1.001, 0.999, 1.0005, 0.9995, 1.0002])
    assert not six.few_samples and six.ci_level >= 0.95
    cut = Summary.from_samples(np.linspace(1.0, 1.001, 8), cut_short=True)
    assert cut.few_samples and cut.flag == "few samples"
    assert interval_level(1000) == 0.95
    # Old files without the fields read back with the defaults.
    data = six.to_dict()
    del data["ci_level"], data["few_samples"]
    assert Summary.from_dict(data).few_samples is False


def test_a_time_cap_before_the_minimum_count_is_flagged_in_the_record() -> None:
    from devicebench.measure.config import InferenceConfig
    from devicebench.measure.inference import InferenceOutcome
    from devicebench.measure.timing import TimingRun
    from devicebench.results.records import InferenceRecord

    config = InferenceConfig("tinycnn-tiny")
    outcome = InferenceOutcome(status="ok", message="", device_name="cpu")
    outcome.compute = TimingRun([10.0, 10.1, 9.9, 10.0, 10.05, 10.02, 9.98], 1, 0.1, 15.0, "time_cap", "perf_counter")
    record = InferenceRecord.from_outcome("r", config, outcome)
    assert record.latency_ms.few_samples and record.latency_ms.flag == "few samples"


def test_wide_decision_intervals_use_their_level_above_300_samples() -> None:
    lo95, _ = _median_ci_ranks(1000, 0.95)
    lo99, _ = _median_ci_ranks(1000, 0.99)
    assert lo99 < lo95  # the normal approximation honours the confidence asked for


# -- the bootstrap interval of a ratio of medians -----------------------------------------------

def test_ratio_interval_coverage_on_lognormal_samples() -> None:
    rng = np.random.default_rng(5)
    trials, hits = 400, 0
    for _ in range(trials):
        a = rng.lognormal(math.log(3.0), 0.1, 60)
        b = rng.lognormal(0.0, 0.2, 45)
        _, lo, hi = ratio_ci(a, b)
        hits += lo <= 3.0 <= hi
    # 400 trials: standard error 0.011; a percentile bootstrap of medians is close to nominal.
    assert 0.92 <= hits / trials <= 0.99, hits / trials


def test_many_samples_narrow_the_ratio_interval_instead_of_being_thinned() -> None:
    rng = np.random.default_rng(6)

    def width(n: int) -> float:
        _, lo, hi = ratio_ci(rng.lognormal(1.0, 0.1, n), rng.lognormal(0.0, 0.1, n))
        return hi - lo

    # 10x the samples: about 1/sqrt(10) = 0.32 of the width (thinning to 2,000 kept it at 1).
    assert width(20_000) < 0.45 * width(2_000)
