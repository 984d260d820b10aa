"""Statistics from raw samples: the summary every result carries, and intervals for ratios.

All intervals are distribution-free: latency samples are skewed (a floor, a long right tail),
so the median's interval comes from order statistics (a binomial argument) and the ratio of
two medians' interval from a bootstrap with a fixed seed (reproducible).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np  # imported where samples are summarised: stored summaries read without it

__all__ = [
    "Summary",
    "median_ci",
    "ratio_ci",
    "NOISY_REL_IQR",
    "NOISY_REL_CI",
]

#: A result is flagged noisy when its IQR exceeds this fraction of the median...
NOISY_REL_IQR = 0.10
#: ...or when the 95% interval of its median reaches further than this fraction from it.
NOISY_REL_CI = 0.05


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
    z = 1.959963984540054
    j = int(math.floor(n / 2.0 - 0.5 - z * math.sqrt(n) / 2.0))
    j = max(0, j)
    return j, n - 1 - j


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

    ``ci95`` is the 95% interval of the median; ``noisy`` is true when the IQR is over 10%
    of the median or the interval reaches over 5% from it.
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

    @classmethod
    def from_samples(cls, samples: Sequence[float] | np.ndarray, unit: str = "ms") -> Summary:
        """Summarise raw samples.

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
        noisy = bool(arr.size < 5 or (median > 0 and iqr / median > NOISY_REL_IQR) or rel_ci > NOISY_REL_CI)
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
        )

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


def ratio_ci(
    numerator: Sequence[float] | np.ndarray,
    denominator: Sequence[float] | np.ndarray,
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
    max_points: int = 2000,
) -> tuple[float, float, float]:
    """Ratio of medians ``median(numerator) / median(denominator)`` with a bootstrap interval.

    Used for speedups (CPU latency / GPU latency). Each side is resampled independently;
    the percentile interval of the resampled ratios is returned. Sides longer than
    ``max_points`` are thinned evenly (keeping their order statistics' shape) to bound cost.

    Returns:
        (ratio, low, high).
    """
    import numpy as np

    a = np.asarray(numerator, dtype=float)
    b = np.asarray(denominator, dtype=float)
    if a.size == 0 or b.size == 0:
        raise ValueError("ratio_ci needs samples on both sides")
    ratio = float(np.median(a) / np.median(b))
    if a.size > max_points:
        a = np.sort(a)[np.linspace(0, a.size - 1, max_points).astype(int)]
    if b.size > max_points:
        b = np.sort(b)[np.linspace(0, b.size - 1, max_points).astype(int)]
    rng = np.random.default_rng(seed)
    med_a = np.median(a[rng.integers(0, a.size, size=(resamples, a.size))], axis=1)
    med_b = np.median(b[rng.integers(0, b.size, size=(resamples, b.size))], axis=1)
    ratios = med_a / med_b
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(ratios, [tail, 100.0 - tail])
    return ratio, float(low), float(high)
