"""The batch size where the GPU starts to win, from the points of a crossover sweep.

:func:`crossover_analysis` turns the curves (each point measured in its own worker by
:func:`devicebench.measure.crossover.measure_crossover_point`) into throughput data and the
answer: the smallest batch size from which the accelerator is faster than the CPU at every
larger batch measured, by a speedup whose 95% interval lies above 1.
"""

from __future__ import annotations

from typing import Any

from devicebench.measure.crossover import CrossoverPoint
from devicebench.measure.stats import ratio_ci

__all__ = ["crossover_analysis"]


def crossover_analysis(curves: dict[str, list[CrossoverPoint]], winners: dict[str, str]) -> dict[str, Any]:
    """Throughput curves and the crossover batch size of each accelerator against the CPU.

    Args:
        curves: device label -> its points (records set), batch sizes ascending.
        winners: device label -> the configuration swept (a candidate name).

    Returns:
        JSON-ready: ``curves`` (per device, per batch: latency, items/s, compute and copy
        times), ``crossover`` (per accelerator: the batch size or ``None``, and a sentence).
    """
    data: dict[str, Any] = {"method": (
        "each device's tuned winner at each batch size, end to end (host tensors in, answer "
        "back on the host); the GPU wins at a batch size when CPU latency / GPU latency has a "
        "95% bootstrap interval above 1; the crossover is the smallest batch from which it "
        "wins at every larger batch measured"), "curves": {}, "crossover": {}}
    for dev, points in curves.items():
        rows = []
        for p in points:
            rec = p.record
            row: dict[str, Any] = {"batch_size": p.batch_size, "status": rec.status if rec else "crashed",
                                   "configuration": winners.get(dev, "eager fp32")}
            if rec is not None and rec.ok and rec.user_latency is not None:
                row["latency_ms"] = rec.user_latency.median
                row["latency_ci95"] = list(rec.user_latency.ci95)
                row["items_per_s"] = p.batch_size / (rec.user_latency.median / 1e3)
                row["compute_ms"] = rec.latency_ms.median if rec.latency_ms else None
                h2d, d2h = (rec.transfer_ms.h2d, rec.transfer_ms.d2h) if rec.transfer_ms else (None, None)
                row["h2d_ms"] = h2d.median if h2d else None
                row["d2h_ms"] = d2h.median if d2h else None
            rows.append(row)
        data["curves"][dev] = rows
    cpu = {p.batch_size: p.record for p in curves.get("cpu", []) if p.record is not None and p.record.ok}
    accels = [d for d in curves if d != "cpu"]
    if not accels:
        data["crossover"]["none"] = {"batch_size": None, "text": "no GPU found: the CPU curve only"}
        return data
    for dev in accels:
        wins: list[tuple[int, bool, list[float]]] = []
        for p in curves[dev]:
            rec = p.record
            if rec is None or not rec.ok or p.batch_size not in cpu:
                continue
            r, lo, hi = ratio_ci(cpu[p.batch_size].user_samples, rec.user_samples)
            wins.append((p.batch_size, lo > 1.0, [r, lo, hi]))
        found = None
        for i, (batch, _, _) in enumerate(wins):
            if all(w for _, w, _ in wins[i:]):
                found = batch
                break
        if not wins:
            text = "no batch size measured on both devices"
        elif found is None:
            text = f"the CPU is as fast or faster at every batch size measured (up to {wins[-1][0]})"
        elif found == wins[0][0]:
            text = f"{dev} is faster from the smallest batch measured ({found})"
        else:
            text = f"{dev} is faster from batch {found} on"
        data["crossover"][dev] = {"batch_size": found, "text": text,
                                  "speedups": {str(b): s for b, _, s in wins}}
    return data
