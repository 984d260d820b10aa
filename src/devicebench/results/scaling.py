"""Scaling efficiency of a data-parallel training run over one process.

Efficiency is throughput(N) / (N x throughput(1)), each the median over epochs of the
training samples per second (validation excluded), with the same per-process batch: 1.0
means N processes did N times the work of one in the same time.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from devicebench.results.records import TrainingRecord

__all__ = ["Scaling", "scaling_of"]


@dataclass(frozen=True)
class Scaling:
    """Throughput of N data-parallel processes against one process on the same device type.

    Attributes:
        nproc: number of processes.
        baseline_samples_per_s: one process, median over its epochs.
        samples_per_s: N processes together, median over their epochs.
        baseline_record_id: the single-process record compared with.
        baseline_threads: CPU threads the single process used.
        threads_per_rank: CPU threads each of the N processes used.
    """

    nproc: int
    baseline_samples_per_s: float
    samples_per_s: float
    baseline_record_id: str = ""
    baseline_threads: int | None = None
    threads_per_rank: int | None = None

    @property
    def speedup(self) -> float:
        return self.samples_per_s / self.baseline_samples_per_s

    @property
    def efficiency(self) -> float:
        """throughput(N) / (N x throughput(1)); 1.0 is perfect linear scaling."""
        return self.speedup / self.nproc

    def to_dict(self) -> dict[str, Any]:
        return {"nproc": self.nproc, "baseline_samples_per_s": self.baseline_samples_per_s,
                "samples_per_s": self.samples_per_s, "speedup": self.speedup, "efficiency": self.efficiency,
                "baseline_record_id": self.baseline_record_id, "baseline_threads": self.baseline_threads,
                "threads_per_rank": self.threads_per_rank,
                "measure": "median over epochs of training samples/s (validation excluded), same per-process batch"}


def scaling_of(baseline: TrainingRecord, record: TrainingRecord) -> Scaling | None:
    """The scaling of ``record`` (N processes) over ``baseline`` (one), or None when either
    has no epoch with a throughput."""
    def median_rate(r: TrainingRecord) -> float | None:
        rates = [e.samples_per_s for e in r.epochs if e.samples_per_s > 0]
        return statistics.median(rates) if rates else None

    base, rate = median_rate(baseline), median_rate(record)
    if base is None or rate is None:
        return None
    return Scaling(int(record.settings.get("nproc", 1)), base, rate, baseline.record_id,
                   baseline.settings.get("threads_used"), record.settings.get("threads_per_rank"))
