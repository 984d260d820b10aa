"""Comparing two runs: known differences are found, noise is not, unlike machines are flagged."""

from __future__ import annotations

import numpy as np
import pytest

from devicebench.measure.stats import ratio_ci
from devicebench.results.compare import (
    compare_runs,
    compare_samples,
    environment_differences,
    ratio_of_medians_ci,
    significance,
)
from devicebench.results.records import RunInfo
from report_fixtures import environment, inference, samples


def _need(method: str) -> None:
    if method == "mannwhitneyu":
        pytest.importorskip("scipy", reason="scipy not installed: the permutation test covers this case")


@pytest.mark.parametrize("method", ["mannwhitneyu", "permutation"])
def test_a_real_ten_percent_change_is_significant(method: str) -> None:
    _need(method)
    a = samples(10.0, seed=1, spread=0.05)
    b = samples(11.0, seed=2, spread=0.05)
    ratio, (lo, hi), p, how, significant, verdict = compare_samples(a, b, method=method)
    assert significant and p < 0.01 and lo > 1.0
    assert ratio == pytest.approx(1.1, abs=0.02)
    assert verdict.startswith("B slower")
    assert ("mann-whitney" in how) == (method == "mannwhitneyu")


@pytest.mark.parametrize("method", ["mannwhitneyu", "permutation"])
@pytest.mark.parametrize("seed", [3, 4, 5])
def test_noise_only_is_no_significant_difference(method: str, seed: int) -> None:
    _need(method)
    a = samples(10.0, seed=1, spread=0.05)
    b = samples(10.0, seed=seed + 10, spread=0.05)
    _, (lo, hi), p, _, significant, verdict = compare_samples(a, b, method=method)
    assert not significant and verdict == "no significant difference"
    assert lo <= 1.0 <= hi


def test_faster_is_named_faster() -> None:
    *_, significant, verdict = compare_samples(samples(10.0, seed=1), samples(8.0, seed=2))
    assert significant and verdict.startswith("B faster (2")


def test_significance_rejects_empty() -> None:
    with pytest.raises(ValueError):
        significance([], [1.0])


def test_like_runs_have_no_environment_warning() -> None:
    a = [inference("resnet50", "cpu", 1, 50.0, seed=1, run_id="A")]
    b = [inference("resnet50", "cpu", 1, 50.0, seed=9, run_id="B")]
    result = compare_runs(RunInfo("A", "x", environment=environment()), a, RunInfo("B", "x", environment=environment()), b)
    assert result.warnings == [] and len(result.rows) == 1
    assert result.rows[0].verdict == "no significant difference"


def test_unlike_machines_are_named() -> None:
    env_b = environment(cpu_model="Other CPU 1", gpu="NVIDIA L4", torch_version="2.11.0")
    a = [inference("resnet50", "cpu", 1, 50.0, seed=1, run_id="A"), inference("resnet50", "cuda:0", 1, 10.0, seed=2)]
    b = [inference("resnet50", "cpu", 1, 55.0, seed=3, run_id="B", env=env_b, threads=4),
         inference("bert-base", "cpu", 1, 90.0, seed=4, env=env_b, threads=4)]
    result = compare_runs(RunInfo("A", "x", environment=environment()), a, RunInfo("B", "x", environment=env_b), b)
    text = " ".join(result.warnings)
    assert "Test CPU 9000" in text and "Other CPU 1" in text and "NVIDIA L4" in text and "2.11.0" in text
    assert "CPU threads: [8] vs [4]" in text
    assert [r.device for r in result.rows] == ["cpu"]
    assert result.rows[0].significant and result.rows[0].ratio == pytest.approx(1.1, abs=0.02)
    assert result.only_a == ["resnet50 cuda:0 b1 fp32"] and result.only_b == ["bert-base cpu b1 fp32"]


def test_missing_environment_is_a_warning() -> None:
    assert environment_differences({}, environment())


@pytest.mark.parametrize("seed", range(16))
def test_the_plain_python_u_test_is_scipys(seed: int) -> None:
    # devicebench compare starts without numpy or scipy; its p-value must still be scipy's.
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(seed)
    # (5, 30), (3, 4), (8, 300), (1, 6): scipy's exact distribution unless ties
    sizes = [(9, 9), (40, 15), (200, 180), (5, 30), (3, 4), (8, 300), (1, 6), (2000, 1500)][seed % 8]
    a = rng.normal(10, 1, sizes[0])
    b = rng.normal(10 + 0.3 * (seed % 3), 1, sizes[1])
    if seed % 2:  # ties, as a coarse clock gives
        a, b = np.round(a, 1), np.round(b, 1)
    p, how = significance(a, b)
    expected = scipy_stats.mannwhitneyu(a, b, alternative="two-sided").pvalue
    assert p == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert "mann-whitney" in how


def test_exact_u_p_values_at_the_extremes() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    for a, b in (([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]), ([4.0, 5.0, 6.0], [1.0, 2.0, 3.0]), ([1.0, 4.0], [2.0, 3.0]),
                 ([1.0], [2.0])):
        p, how = significance(a, b)
        assert p == pytest.approx(scipy_stats.mannwhitneyu(a, b, alternative="two-sided").pvalue, rel=1e-12)
        assert "exact" in how


@pytest.mark.parametrize("case", range(6))
def test_the_plain_python_interval_is_numpys_within_its_monte_carlo_error(case: int) -> None:
    # Same algorithm as measure.stats.ratio_ci, another generator: the ends agree to the
    # bootstrap's own sampling error (2000 resamples), and the ratio exactly.
    rng = np.random.default_rng(case)
    n_a, n_b = [(9, 9), (40, 15), (200, 180), (5, 30), (64, 64), (1, 3)][case]
    a = rng.lognormal(2.3, 0.05 * (1 + case % 3), n_a)
    b = rng.lognormal(2.3 + 0.02 * case, 0.05, n_b)
    ratio, lo, hi = ratio_of_medians_ci(b, a)
    r_np, lo_np, hi_np = ratio_ci(b, a)
    assert ratio == pytest.approx(r_np, rel=1e-12)
    width = hi_np - lo_np
    assert abs(lo - lo_np) <= 0.1 * width + 1e-12 and abs(hi - hi_np) <= 0.1 * width + 1e-12
    assert lo <= ratio <= hi
    assert ratio_of_medians_ci(b, a) == (ratio, lo, hi)  # a fixed seed: the same answer each time
