"""The intervals and verdicts the docs promise, checked by simulation against known truths.

* Speedups are ratios of medians with a 95% bootstrap interval: over many simulated pairs
  with a known true ratio, the interval covers it about 95% of the time, and is about as wide
  as the asymptotic theory of the median says (computed here, not by the code).
* compare's "no significant difference": two runs drawn from one distribution are called
  different no more often than alpha allows; a real 5% change is found.

(The median's own interval has its coverage test in test_stats.py.) See docs/testing.md.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from devicebench.measure.stats import ratio_ci
from devicebench.results.compare import compare_samples

TRUE_RATIO = 8.0  # lognormal medians exp(mu): 80 ms on the CPU, 10 ms on the GPU


def _pair(rng: np.random.Generator, n: int, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    cpu = rng.lognormal(math.log(80.0), sigma, n)
    gpu = rng.lognormal(math.log(10.0), sigma, n)
    return cpu, gpu


@pytest.mark.parametrize("n, sigma", [(10, 0.3), (30, 0.1)])
def test_bootstrap_speedup_interval_covers_the_true_ratio(n: int, sigma: float) -> None:
    rng = np.random.default_rng(20261128 + n)
    trials, hits = 300, 0
    for _ in range(trials):
        cpu, gpu = _pair(rng, n, sigma)
        ratio, lo, hi = ratio_ci(cpu, gpu)
        assert ratio == pytest.approx(np.median(cpu) / np.median(gpu))  # the point estimate, by numpy
        assert lo <= ratio <= hi
        hits += lo <= TRUE_RATIO <= hi
    coverage = hits / trials
    # 95% nominal; the bootstrap of a median is discrete and a little conservative at small n.
    # 300 trials: a standard error of about 1.3 points.
    assert 0.92 <= coverage <= 0.995, coverage


def test_bootstrap_speedup_interval_has_the_width_theory_gives() -> None:
    # Large n: log median ~ Normal(mu, (pi/2) sigma^2 / n) for a lognormal, so log(ratio) has
    # variance 2 (pi/2) sigma^2 / n and the 95% interval of the ratio is
    # ratio * exp(+/- 1.96 sqrt(pi sigma^2 / n)).
    n, sigma = 400, 0.05
    rng = np.random.default_rng(5)
    widths = []
    for _ in range(20):
        cpu, gpu = _pair(rng, n, sigma)
        _, lo, hi = ratio_ci(cpu, gpu)
        widths.append(math.log(hi) - math.log(lo))
    expected = 2 * 1.959964 * math.sqrt(math.pi * sigma**2 / n)
    assert 0.75 * expected <= float(np.mean(widths)) <= 1.3 * expected, (np.mean(widths), expected)


def test_no_significant_difference_when_nothing_changed() -> None:
    rng = np.random.default_rng(11)
    trials, called_different = 60, 0
    for _ in range(trials):
        a = rng.lognormal(math.log(10.0), 0.05, 100)
        b = rng.lognormal(math.log(10.0), 0.05, 100)
        *_, significant, verdict = compare_samples(list(a), list(b))
        called_different += significant
        assert significant or verdict == "no significant difference"
    # alpha = 0.05 on the test, and the interval must exclude 1 as well: at most a few of 60.
    assert called_different <= 6, called_different


def test_a_real_five_percent_change_is_found() -> None:
    rng = np.random.default_rng(12)
    found = 0
    for _ in range(20):
        a = rng.lognormal(math.log(10.0), 0.02, 100)
        b = rng.lognormal(math.log(10.5), 0.02, 100)
        ratio, (lo, hi), _, _, significant, verdict = compare_samples(list(a), list(b))
        assert lo <= 1.05 <= hi or abs(ratio - 1.05) < 0.01
        found += significant and verdict.startswith("B slower")
    assert found == 20
