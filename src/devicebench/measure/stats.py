"""Statistics from raw samples: the summary every result carries, and intervals for ratios.

All intervals are distribution-free: latency samples are skewed (a floor, a long right tail),
so the median's interval comes from order statistics (a binomial argument) and the ratio of
two medians' interval from a bootstrap with a fixed seed (reproducible).

The adaptive stopping rule lives here too, as pure functions that work on one sequence of
samples or on many at once (rows of an array): :mod:`.timing` runs it on a live sequence, and
``tests/unit/test_stats.py`` runs the very same functions on thousands of simulated lognormal
sequences to measure the coverage of the interval that is reported when it stops.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np  # imported where samples are summarised: stored summaries read without it

__all__ = [
    "CHECK_GROWTH",
    "FEW_SAMPLES",
    "NOISY_REL_CI",
    "NOISY_REL_IQR",
    "STOP_CONFIDENCE",
    "Summary",
    "interval_level",
    "median_ci",
    "median_within",
    "next_check",
    "ratio_ci",
]

#: A result is flagged noisy when its IQR exceeds this fraction of the median...
NOISY_REL_IQR = 0.10
#: ...or when the 95% interval of its median reaches further than this fraction from it.
NOISY_REL_CI = 0.05
#: Fewer samples than this cannot give a 95% interval of the median at all: with n <= 5
#: the widest order-statistics interval, [min, max], covers it with 1 - 2**(1 - n) only
#: (75% at 3 samples, 93.75% at 5). Such a result is flagged ``few_samples`` (and noisy).
FEW_SAMPLES = 6
#: The stopping rule decides with a wider interval (99%) than the one it reports (95%)...
STOP_CONFIDENCE = 0.99
#: ...and looks only at sample counts that grow geometrically by this factor. Stopping the
#: first time a 95% interval looked narrow enough, checked after every sample, lowers the
#: real coverage of the reported "95%" interval to about 93% (a narrow interval is more
#: often a lucky one); with both changes it is 95% again (simulated in test_stats.py).
CHECK_GROWTH = 1.1


def _binom_cdf(k: int, n: int) -> float:
    """P(B <= k) for B ~ Binomial(n, 1/2), exact."""
    if k < 0:
        return 0.0
    total = 0.0
    log_half_n = n * math.log(0.5)
    for i in range(k + 1):
        total += math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + log_half_n)
    return total


@lru_cache(maxsize=4096)
def _median_ci_ranks(n: int, confidence: float = 0.95) -> tuple[int, int]:
    """0-based ranks (j, n-1-j) of sorted samples bounding the median with ``confidence``.

    The true median lies below x_(j) only when at most j samples fall below it, so the
    interval [x_(j), x_(n-1-j)] covers it with probability 1 - 2 P(B <= j),
    B ~ Binomial(n, 1/2); j is the largest rank that keeps that >= confidence.
    Exact for n <= 300, normal approximation (with continuity correction) above.
    """
    alpha = (1.0 - confidence) / 2.0
    if n <= 300:
        j = 0
        while j + 1 <= (n - 1) // 2 and _binom_cdf(j + 1, n) <= alpha:
            j += 1
        return j, n - 1 - j
    z = NormalDist().inv_cdf(1.0 - alpha)
    j = int(math.floor(n / 2.0 - 0.5 - z * math.sqrt(n) / 2.0))
    j = max(0, j)
    return j, n - 1 - j


def interval_level(n: int, confidence: float = 0.95) -> float:
    """The real coverage of :func:`median_ci`'s interval over ``n`` samples.

    Order statistics give discrete levels: at least ``confidence`` when ``n`` allows it
    (exact for n <= 300, ``confidence`` above), less for ``n`` under :data:`FEW_SAMPLES`.
    """
    if n < 1:
        return 0.0
    if n > 300:
        return confidence
    j, _ = _median_ci_ranks(n, confidence)
    return 1.0 - 2.0 * _binom_cdf(j, n)


def median_within(samples: Sequence[float] | np.ndarray, target_rel: float,
                  confidence: float = STOP_CONFIDENCE) -> np.ndarray:
    """The stopping test: does the median's ``confidence`` interval lie within ``target_rel`` of it?

    ``samples`` is one sequence or a 2-D array of sequences (one per row, all of the same
    length); returns a boolean array with one entry per sequence (shape ``()`` for one).
    Uses a partial sort (only the ranks needed), so it is cheap enough to run on thousands
    of simulated sequences.
    """
    import numpy as np

    arr = np.asarray(samples, dtype=float)
    n = arr.shape[-1]
    if n == 0:
        return np.zeros(arr.shape[:-1], dtype=bool)
    lo_rank, hi_rank = _median_ci_ranks(n, confidence)
    m1, m2 = (n - 1) // 2, n // 2
    part = np.partition(arr, sorted({lo_rank, hi_rank, m1, m2}), axis=-1)
    median = (part[..., m1] + part[..., m2]) / 2.0
    reach = np.maximum(median - part[..., lo_rank], part[..., hi_rank] - median)
    return (median > 0) & (reach <= target_rel * median)


def next_check(n: int) -> int:
    """After checking at ``n`` samples, the count at which the stopping rule looks again."""
    return max(n + 1, math.ceil(n * CHECK_GROWTH))


def median_ci(samples: Sequence[float] | np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval of the median (order statistics)."""
    import numpy as np

    arr = np.sort(np.asarray(samples, dtype=float))
    if arr.size == 0:
        raise ValueError("no samples")
    lo, hi = _median_ci_ranks(arr.size, confidence)
    return float(arr[lo]), float(arr[hi])


@dataclass
class Summary:
    """Statistics of one set of samples (all in ``unit``), built from the raw samples.

    ``ci95`` is the 95% interval of the median and ``ci_level`` its real coverage (order
    statistics give discrete levels: at least 0.95 from 6 samples on, 0.75-0.94 below);
    ``few_samples`` is true under :data:`FEW_SAMPLES` samples, or when the measurement hit its
    time cap before its minimum count; ``noisy`` is true then too, or when the IQR is over
    10% of the median, or the interval reaches over 5% from it.
    """

    n: int
    median: float
    mean: float
    min: float
    max: float
    p90: float
    p99: float
    stdev: float
    iqr: float
    ci95: tuple[float, float]
    noisy: bool
    unit: str = "ms"
    ci_level: float = 0.95
    few_samples: bool = False

    @classmethod
    def from_samples(cls, samples: Sequence[float] | np.ndarray, unit: str = "ms", *,
                     cut_short: bool = False) -> Summary:
        """Summarise raw samples.

        Args:
            samples: the raw samples.
            unit: their unit.
            cut_short: the measurement stopped at its time cap before its minimum count
                (flagged ``few_samples`` whatever the count).

        Raises:
            ValueError: no samples, or a sample that is not finite.
        """
        import numpy as np

        arr = np.asarray(samples, dtype=float)
        if arr.size == 0:
            raise ValueError("cannot summarise zero samples")
        if not np.all(np.isfinite(arr)):
            raise ValueError("samples must be finite numbers")
        median = float(np.median(arr))
        q25, q75, p90, p99 = (float(v) for v in np.percentile(arr, [25, 75, 90, 99]))
        lo, hi = median_ci(arr)
        iqr = q75 - q25
        rel_ci = max(median - lo, hi - median) / median if median > 0 else math.inf
        few = bool(arr.size < FEW_SAMPLES or cut_short)
        noisy = bool(few or (median > 0 and iqr / median > NOISY_REL_IQR) or rel_ci > NOISY_REL_CI)
        return cls(
            n=int(arr.size),
            median=median,
            mean=float(arr.mean()),
            min=float(arr.min()),
            max=float(arr.max()),
            p90=p90,
            p99=p99,
            stdev=float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
            iqr=iqr,
            ci95=(lo, hi),
            noisy=noisy,
            unit=unit,
            ci_level=round(interval_level(int(arr.size)), 4),
            few_samples=few,
        )

    @property
    def flag(self) -> str:
        """What tables print beside the median: ``few samples``, ``noisy`` or nothing."""
        return "few samples" if self.few_samples else ("noisy" if self.noisy else "")

    @property
    def rel_ci(self) -> float:
        """How far the 95% interval reaches from the median, as a fraction of it."""
        if self.median <= 0:
            return math.inf
        return max(self.median - self.ci95[0], self.ci95[1] - self.median) / self.median

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ci95"] = list(self.ci95)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Summary:
        data = dict(data)
        data["ci95"] = tuple(data["ci95"])
        return cls(**data)


def _bootstrap_medians(sorted_x: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Medians of ``resamples`` bootstrap resamples (n draws with replacement) of ``sorted_x``.

    Drawn exactly without building the resamples: the k-th smallest of n draws from the
    empirical distribution is ``x[ceil(n U) - 1]`` with U the k-th smallest of n uniforms,
    which is Beta(k, n - k + 1); for an even n the next one up is U + (1 - U) Beta(1, n - k).
    The cost does not grow with n, so nothing is ever thinned.
    """
    import numpy as np

    n = sorted_x.size
    k = (n + 1) // 2
    u1 = rng.beta(k, n - k + 1, size=resamples)

    def at(u: np.ndarray) -> np.ndarray:
        return sorted_x[np.clip(np.ceil(u * n).astype(np.int64) - 1, 0, n - 1)]

    if n % 2:
        return at(u1)
    u2 = u1 + (1.0 - u1) * rng.beta(1, n - k, size=resamples)
    return (at(u1) + at(u2)) / 2.0


def ratio_ci(
    numerator: Sequence[float] | np.ndarray,
    denominator: Sequence[float] | np.ndarray,
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Ratio of medians ``median(numerator) / median(denominator)`` with a bootstrap interval.

    Used for speedups (CPU latency / GPU latency). Each side is resampled independently, all
    of its samples (the resampled medians are drawn exactly, at a cost that does not depend
    on the number of samples); the percentile interval of the resampled ratios is returned.

    Returns:
        (ratio, low, high).
    """
    import numpy as np

    a = np.sort(np.asarray(numerator, dtype=float))
    b = np.sort(np.asarray(denominator, dtype=float))
    if a.size == 0 or b.size == 0:
        raise ValueError("ratio_ci needs samples on both sides")
    ratio = float(np.median(a) / np.median(b))
    rng = np.random.default_rng(seed)
    ratios = _bootstrap_medians(a, resamples, rng) / _bootstrap_medians(b, resamples, rng)
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(ratios, [tail, 100.0 - tail])
    return ratio, float(low), float(high)
