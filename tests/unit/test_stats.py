"""Statistics against known distributions and known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from devicebench.measure.stats import Summary, _median_ci_ranks, median_ci, ratio_ci


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
