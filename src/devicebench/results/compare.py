"""Compare two runs honestly: a ratio with its interval and a significance test per matching
configuration, and a warning whenever the two runs were not measured on like machines.

Method, per configuration present in both runs (same model, device label, batch size,
precision and tuning variant), on the raw samples a user waits for (end to end on an
accelerator, compute on the CPU):

* ratio = median(B) / median(A) (time: below 1 means B is faster), with a 95% bootstrap
  interval (:func:`devicebench.measure.stats.ratio_ci`);
* a two-sided Mann-Whitney U test or, without scipy, a permutation test on the difference
  of medians (numpy, fixed seed); the method used is recorded. The U test's p-value is
  scipy's ``mannwhitneyu(..., alternative="two-sided")``: computed here with numpy where
  scipy itself uses the normal approximation (both sides above 8 samples, or ties; with
  tie and continuity corrections, as scipy does), so that ``devicebench compare`` usually
  starts without importing scipy; by scipy's exact method otherwise (a side of 8 samples
  or fewer without ties);
* the difference is called significant only when p < alpha AND the interval excludes 1;
  otherwise the verdict is "no significant difference";
* when the records say why the two may differ apart from what was changed, the verdict names
  it (``cause``): other programs using the CPU while either side was measured (more than
  :data:`BUSY_CORES` cores' worth, recorded per configuration), or unlike machines or software.

Samples of one timing loop are not fully independent (a slow spell lasts several calls), so
p-values are optimistic; requiring the bootstrap interval to exclude 1 as well guards a little.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from devicebench.measure.stats import ratio_ci
from devicebench.measure.timing import BUSY_CORES
from devicebench.results.records import InferenceRecord, RunInfo

__all__ = ["BUSY_CORES", "busy_cause", "ComparisonRow", "Comparison", "significance", "compare_samples", "compare_runs", "environment_differences"]

#: Package versions that change results; a difference is reported.
_PACKAGES = ("torch", "torchvision", "numpy", "onnxruntime", "onnxruntime-gpu", "transformers", "devicebench")


def significance(a: Sequence[float], b: Sequence[float], *, permutations: int = 2000, seed: int = 0,
                 method: str = "auto") -> tuple[float, str]:
    """Two-sided p-value that ``a`` and ``b`` come from the same distribution, and the method.

    ``method``: ``auto`` (Mann-Whitney U when scipy is installed, else permutation),
    ``mannwhitneyu`` or ``permutation``.

    Raises:
        ValueError: an empty side, or an unknown method.
    """
    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    if x.size == 0 or y.size == 0:
        raise ValueError("significance needs samples on both sides")
    if method not in ("auto", "mannwhitneyu", "permutation"):
        raise ValueError(f"unknown method {method!r}")
    if method in ("auto", "mannwhitneyu"):
        asymptotic = _mann_whitney_asymptotic(x, y)
        if asymptotic is not None:
            return asymptotic, "mann-whitney-u (normal approximation with tie correction, as scipy)"
        try:
            from scipy.stats import mannwhitneyu
        except ImportError:
            if method == "mannwhitneyu":
                raise
        else:
            return float(mannwhitneyu(x, y, alternative="two-sided").pvalue), "mann-whitney-u (scipy)"
    # Permutation test on the difference of medians: shuffle the pooled samples.
    rng = np.random.default_rng(seed)
    pooled = np.concatenate([x, y])
    observed = abs(np.median(x) - np.median(y))
    count = 0
    for _ in range(permutations):
        perm = rng.permutation(pooled)
        if abs(np.median(perm[: x.size]) - np.median(perm[x.size:])) >= observed:
            count += 1
    return (count + 1) / (permutations + 1), f"permutation test on medians ({permutations} shuffles, numpy)"


def _mann_whitney_asymptotic(x: np.ndarray, y: np.ndarray) -> float | None:
    """Two-sided p-value of the Mann-Whitney U test by the normal approximation, exactly as
    ``scipy.stats.mannwhitneyu`` computes it when it chooses that method (both sides above 8
    samples, or any tie); None where scipy would use its exact distribution instead (a side
    of 8 samples or fewer, no ties)."""
    import math

    n1, n2 = x.size, y.size
    pooled = np.concatenate([x, y])
    order = np.argsort(pooled, kind="mergesort")
    ranked = pooled[order]
    # Average ranks (1-based) over runs of equal values, as scipy.stats.rankdata does.
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
    counts = np.diff(np.r_[starts, pooled.size])
    has_ties = bool((counts > 1).any())
    if not (n1 > 8 and n2 > 8) and not has_ties:
        return None  # scipy's "auto" uses the exact distribution here
    avg = starts + (counts + 1) / 2.0
    ranks = np.empty(pooled.size)
    ranks[order] = np.repeat(avg, counts)
    u1 = float(ranks[:n1].sum()) - n1 * (n1 + 1) / 2.0
    u = max(u1, n1 * n2 - u1)
    n = n1 + n2
    tie_term = float((counts.astype(float) ** 3 - counts).sum())
    s = math.sqrt(n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1))))
    if s == 0.0:
        return 1.0
    z = (u - n1 * n2 / 2.0 - 0.5) / s  # continuity correction
    return float(min(1.0, max(0.0, math.erfc(z / math.sqrt(2.0)))))  # 2 * norm.sf(z)


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
    ratio, lo, hi = ratio_ci(b, a)
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
            ra.model, ra.device.label, ra.batch_size, ra.precision, key[4], float(np.median(ra.user_samples)),
            float(np.median(rb.user_samples)), ratio, ci, p, how, sig, verdict,
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
