"""Compare two runs honestly: a ratio with its interval and a significance test per matching
configuration, and a warning whenever the two runs were not measured on like machines.

Method, per configuration present in both runs (same model, device label, batch size,
precision and tuning variant), on the raw samples a user waits for (end to end on an
accelerator, compute on the CPU):

* ratio = median(B) / median(A) (time: below 1 means B is faster), with a 95% bootstrap
  interval (:func:`ratio_of_medians_ci`: the algorithm of
  :func:`devicebench.measure.stats.ratio_ci` in plain Python, drawn from Python's generator);
* a two-sided Mann-Whitney U test (the method used is recorded): its p-value is scipy's
  ``mannwhitneyu(..., alternative="two-sided")``, computed here in plain Python the way
  scipy does (its exact distribution for a side of 8 samples or fewer without ties, else
  the normal approximation with tie and continuity corrections), so that ``devicebench
  compare`` starts without importing numpy or scipy; a permutation test on the difference
  of medians (numpy, fixed seed) when asked for;
* the difference is called significant only when p < alpha AND the interval excludes 1;
  otherwise the verdict is "no significant difference";
* when the records say why the two may differ apart from what was changed, the verdict names
  it (``cause``): other programs using the CPU while either side was measured (more than
  :data:`BUSY_CORES` cores' worth, recorded per configuration), or unlike machines or software.

Samples of one timing loop are not fully independent (a slow spell lasts several calls), so
p-values are optimistic; requiring the bootstrap interval to exclude 1 as well guards a little.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from devicebench.measure.timing import BUSY_CORES
from devicebench.results.records import InferenceRecord, RunInfo

__all__ = ["BUSY_CORES", "busy_cause", "ComparisonRow", "Comparison", "significance", "compare_samples", "compare_runs", "environment_differences"]

#: Package versions that change results; a difference is reported.
_PACKAGES = ("torch", "torchvision", "numpy", "onnxruntime", "onnxruntime-gpu", "transformers", "devicebench")


def significance(a: Sequence[float], b: Sequence[float], *, permutations: int = 2000, seed: int = 0,
                 method: str = "auto") -> tuple[float, str]:
    """Two-sided p-value that ``a`` and ``b`` come from the same distribution, and the method.

    ``method``: ``auto`` or ``mannwhitneyu`` (the Mann-Whitney U test, computed here in plain
    Python exactly as ``scipy.stats.mannwhitneyu(a, b, alternative="two-sided")``: its exact
    distribution for a side of 8 samples or fewer without ties, else the normal approximation
    with tie and continuity corrections), or ``permutation`` (a permutation test on the
    difference of medians, numpy, fixed seed).

    Raises:
        ValueError: an empty side, or an unknown method.
    """
    x = [float(v) for v in a]
    y = [float(v) for v in b]
    if not x or not y:
        raise ValueError("significance needs samples on both sides")
    if method not in ("auto", "mannwhitneyu", "permutation"):
        raise ValueError(f"unknown method {method!r}")
    if method in ("auto", "mannwhitneyu"):
        p, how = mann_whitney_u(x, y)
        return p, f"mann-whitney-u ({how}, as scipy)"
    # Permutation test on the difference of medians: shuffle the pooled samples.
    import numpy as np

    rng = np.random.default_rng(seed)
    pooled = np.concatenate([np.asarray(x), np.asarray(y)])
    observed = abs(np.median(x) - np.median(y))
    count = 0
    for _ in range(permutations):
        perm = rng.permutation(pooled)
        if abs(np.median(perm[: len(x)]) - np.median(perm[len(x):])) >= observed:
            count += 1
    return (count + 1) / (permutations + 1), f"permutation test on medians ({permutations} shuffles, numpy)"


def mann_whitney_u(x: Sequence[float], y: Sequence[float]) -> tuple[float, str]:
    """Two-sided p-value of the Mann-Whitney U test and the method scipy's ``auto`` picks for
    these samples (``exact`` or ``normal approximation with tie correction``), computed in
    plain Python (no numpy, no scipy: ``devicebench compare`` starts without them) as
    ``scipy.stats.mannwhitneyu`` computes it (tests/unit/test_compare.py holds it to scipy)."""
    n1, n2 = len(x), len(y)
    pooled = sorted([(v, 0) for v in x] + [(v, 1) for v in y], key=lambda item: item[0])
    # Average ranks (1-based) over runs of equal values, as scipy.stats.rankdata does.
    rank_sum_x, counts, i = 0.0, [], 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        avg = (i + j) / 2.0 + 1.0
        rank_sum_x += avg * sum(1 for k in range(i, j + 1) if pooled[k][1] == 0)
        counts.append(j - i + 1)
        i = j + 1
    u1 = rank_sum_x - n1 * (n1 + 1) / 2.0
    u = max(u1, n1 * n2 - u1)
    has_ties = any(c > 1 for c in counts)
    if not (n1 > 8 and n2 > 8) and not has_ties:
        return min(1.0, 2.0 * _mwu_exact_cdf(n1, n2, round(n1 * n2 - u))), "exact"
    n = n1 + n2
    tie_term = float(sum(c**3 - c for c in counts))
    s = math.sqrt(n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1))))
    if s == 0.0:
        return 1.0, "normal approximation with tie correction"
    z = (u - n1 * n2 / 2.0 - 0.5) / s  # continuity correction
    return min(1.0, max(0.0, math.erfc(z / math.sqrt(2.0)))), "normal approximation with tie correction"


def _mwu_exact_cdf(n1: int, n2: int, k: int) -> float:
    """P(U <= k) under the null hypothesis, from the exact counts: the number of
    arrangements with U = u is the coefficient of q^u in the Gaussian binomial
    [n1 + n2 choose n1]_q = prod_{i=1..m} (1 - q^(M+i)) / (1 - q^i), m <= M the two sizes."""
    m, big = min(n1, n2), max(n1, n2)
    if k < 0:
        return 0.0
    top = m * big
    coeffs = [1] + [0] * top  # integers: exact at any size
    for i in range(1, m + 1):
        shift = big + i
        for u in range(top, shift - 1, -1):  # times (1 - q^shift)
            coeffs[u] -= coeffs[u - shift]
        for u in range(i, top + 1):  # divided by (1 - q^i)
            coeffs[u] += coeffs[u - i]
    return sum(coeffs[: min(k, top) + 1]) / math.comb(n1 + n2, n1)


def ratio_of_medians_ci(numerator: Sequence[float], denominator: Sequence[float], *, confidence: float = 0.95,
                        resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """``median(numerator) / median(denominator)`` and its bootstrap percentile interval,
    in plain Python (``compare`` starts without numpy).

    The algorithm of :func:`devicebench.measure.stats.ratio_ci` (each side's resampled
    medians drawn exactly as order statistics of Beta variates, ``resamples`` of them, the
    percentile interval with numpy's linear interpolation), drawn from Python's generator
    (``random.Random(seed)``) instead of numpy's: the interval is as exact, but not the same
    random draw, so its ends differ from ``ratio_ci``'s by the bootstrap's own Monte Carlo
    error (tests/unit/test_compare.py bounds it).
    """
    a = sorted(float(v) for v in numerator)
    b = sorted(float(v) for v in denominator)
    if not a or not b:
        raise ValueError("ratio_of_medians_ci needs samples on both sides")
    ratio = statistics.median(a) / statistics.median(b)
    rng = random.Random(seed)
    ratios = sorted(p / q for p, q in zip(_bootstrap_medians(a, resamples, rng), _bootstrap_medians(b, resamples, rng),
                                          strict=True))
    tail = (1.0 - confidence) / 2.0
    return ratio, _percentile(ratios, tail), _percentile(ratios, 1.0 - tail)


def _bootstrap_medians(sorted_x: list[float], resamples: int, rng: random.Random) -> list[float]:
    n = len(sorted_x)
    k = (n + 1) // 2

    def at(u: float) -> float:
        return sorted_x[min(max(math.ceil(u * n) - 1, 0), n - 1)]

    u1 = [rng.betavariate(k, n - k + 1) for _ in range(resamples)]
    if n % 2:
        return [at(u) for u in u1]
    # Beta(1, b) by inversion of its distribution function 1 - (1 - x)^b: one draw each.
    u2 = [u + (1.0 - u) * (1.0 - (1.0 - rng.random()) ** (1.0 / (n - k))) for u in u1]
    return [(at(p) + at(q)) / 2.0 for p, q in zip(u1, u2, strict=True)]


def _percentile(sorted_values: list[float], q: float) -> float:
    """numpy's default ("linear") percentile of sorted values, ``q`` in [0, 1]."""
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@dataclass
class ComparisonRow:
    """One configuration measured in both runs."""

    model: str
    device: str
    batch_size: int
    precision: str
    variant: str
    median_a_ms: float
    median_b_ms: float
    ratio: float
    ci95: tuple[float, float]
    p_value: float
    method: str
    significant: bool
    verdict: str
    n_a: int
    n_b: int
    cause: str = ""

    def text(self) -> str:
        lo, hi = self.ci95
        return f"{self.ratio:.3f}x [{lo:.3f}-{hi:.3f}], p={self.p_value:.2g}: {self.verdict}"


def compare_samples(a: Sequence[float], b: Sequence[float], *, alpha: float = 0.05,
                    method: str = "auto") -> tuple[float, tuple[float, float], float, str, bool, str]:
    """(ratio B/A of medians, 95% interval, p-value, method, significant, verdict) of two sample sets."""
    ratio, lo, hi = ratio_of_medians_ci(b, a)
    p, how = significance(a, b, method=method)
    significant = p < alpha and not (lo <= 1.0 <= hi)
    if not significant:
        verdict = "no significant difference"
    elif ratio < 1:
        verdict = f"B faster ({(1 / ratio - 1):.1%} more speed)"
    else:
        verdict = f"B slower ({ratio - 1:.1%} more time)"
    return ratio, (lo, hi), p, how, significant, verdict


def busy_cause(record_a: InferenceRecord, record_b: InferenceRecord) -> str:
    """"other programs used N cores while A (B) was measured", or "" when neither side
    recorded such load."""
    busy = []
    for side, rec in (("A", record_a), ("B", record_b)):
        load = rec.timing.other_cpu_load
        if load is not None and load > BUSY_CORES:
            busy.append(f"other programs used {load:.1f} cores while {side} was measured")
    return "; ".join(busy)


def _fingerprint(env: dict[str, Any]) -> dict[str, Any]:
    from devicebench.devices.sysinfo import Environment

    try:
        fp = Environment.from_dict(env).fingerprint()
    except (KeyError, TypeError):
        cpu = env.get("cpu") or {}
        fp = {"cpu": cpu.get("model"), "cores": cpu.get("affinity_cores") or cpu.get("logical_cores"),
              "accelerators": [a.get("name") for a in env.get("accelerators", []) or []],
              "driver": sorted({a.get("driver") for a in env.get("accelerators", []) or [] if a.get("driver")}),
              "torch": env.get("torch"), "cuda": env.get("cuda_version"), "os": env.get("os")}
    fp["cuDNN"] = env.get("cudnn_version")
    packages = env.get("packages") or {}
    for name in _PACKAGES:
        if name != "torch":
            fp[name] = packages.get(name)
    return fp


def environment_differences(env_a: dict[str, Any], env_b: dict[str, Any],
                            threads_a: Sequence[int] = (), threads_b: Sequence[int] = ()) -> list[str]:
    """What differs between two runs' machines and software (empty: like environments)."""
    if not env_a or not env_b:
        return ["one run has no recorded environment: cannot tell whether the machines match"]
    fa, fb = _fingerprint(env_a), _fingerprint(env_b)
    out = [f"{key}: {fa.get(key)!r} vs {fb.get(key)!r}" for key in fa if fa.get(key) != fb.get(key)]
    ta, tb = sorted(set(threads_a)), sorted(set(threads_b))
    if ta and tb and ta != tb:
        out.append(f"CPU threads: {ta} vs {tb}")
    return out


@dataclass
class Comparison:
    """Two runs compared: rows, what only one side has, and warnings."""

    run_a: str
    run_b: str
    rows: list[ComparisonRow] = field(default_factory=list)
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)
    environment_differences: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    alpha: float = 0.05
    method: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for row in data["rows"]:
            row["ci95"] = list(row["ci95"])
        return data


def _key(r: InferenceRecord) -> tuple[str, str, int, str, str]:
    variant = getattr(r, "variant", None)
    if isinstance(variant, dict):
        variant = ",".join(f"{k}={v}" for k, v in sorted(variant.items()))
    # "eager" is plain PyTorch, the default: only tuned variants are named.
    return (r.model, r.device.label, r.batch_size, r.precision, "" if variant in (None, "", "eager") else str(variant))


def _label(key: tuple[str, str, int, str, str]) -> str:
    model, device, batch, precision, variant = key
    return f"{model} {device} b{batch} {precision}" + (f" [{variant}]" if variant else "")


def compare_runs(run_a: RunInfo, records_a: Sequence[InferenceRecord], run_b: RunInfo,
                 records_b: Sequence[InferenceRecord], *, alpha: float = 0.05, method: str = "auto") -> Comparison:
    """Compare every configuration measured (successfully) in both runs."""
    result = Comparison(run_a.run_id, run_b.run_id, alpha=alpha)
    a = {_key(r): r for r in records_a if r.ok and r.user_samples}
    b = {_key(r): r for r in records_b if r.ok and r.user_samples}
    env_a = run_a.environment or (records_a[0].environment if records_a else {})
    env_b = run_b.environment or (records_b[0].environment if records_b else {})
    result.environment_differences = environment_differences(
        env_a, env_b, [r.threads for r in records_a if r.device.type == "cpu" and r.threads],
        [r.threads for r in records_b if r.device.type == "cpu" and r.threads])
    if result.environment_differences:
        result.warnings.append("unlike environments: the difference may come from the machines or software, "
                               "not only from what you changed: " + "; ".join(result.environment_differences))
    for key in a:
        if key not in b:
            result.only_a.append(_label(key))
            continue
        ra, rb = a[key], b[key]
        ratio, ci, p, how, sig, verdict = compare_samples(ra.user_samples, rb.user_samples, alpha=alpha, method=method)
        causes = [c for c in (busy_cause(ra, rb), "different machines or software: " + "; ".join(
            result.environment_differences) if result.environment_differences else "") if c]
        cause = "; ".join(causes)
        if cause:
            verdict += (f" - recorded cause: {cause}" if sig else
                        f" (but {cause}: a real difference may be hidden)")
        result.method = how
        result.rows.append(ComparisonRow(
            ra.model, ra.device.label, ra.batch_size, ra.precision, key[4], statistics.median(ra.user_samples),
            statistics.median(rb.user_samples), ratio, ci, p, how, sig, verdict,
            len(ra.user_samples), len(rb.user_samples), cause))
        for side, rec in (("A", ra), ("B", rb)):
            lat = rec.user_latency
            if lat is not None and lat.noisy:
                result.warnings.append(f"{_label(key)} is noisy in run {side}: its verdict is less reliable")
    result.only_b = [_label(k) for k in b if k not in a]
    if not result.rows:
        result.notes.append("no configuration was measured in both runs: nothing to compare")
    if result.only_a:
        result.notes.append(f"only in A ({run_a.run_id}): " + ", ".join(result.only_a))
    if result.only_b:
        result.notes.append(f"only in B ({run_b.run_id}): " + ", ".join(result.only_b))
    if result.rows:
        result.notes.append(f"ratio = median B / median A of the time per batch (below 1: B is faster); 95% bootstrap "
                            f"interval; {result.method}; significant when p < {alpha:g} and the interval excludes 1.")
    return result
