"""The batch size where the GPU starts to win: a sweep, end to end, copies timed apart.

Each point is one configuration (a device's tuned winner at one batch size) measured in its
own worker by :func:`measure_crossover_point`: compute-only and end-to-end latency as usual
(:func:`.inference.measure_inference`), and on an accelerator, in the same worker, the
host-to-device copy of the inputs and the device-to-host copy of the output, each timed on
its own with the device synchronised. On the CPU there is nothing to copy.

:func:`crossover_analysis` turns the curves into throughput data and the answer: the
smallest batch size from which the accelerator is faster than the CPU at every larger batch
measured, by a speedup whose 95% interval lies above 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch

from devicebench.devices.discovery import DeviceSpec
from devicebench.devices.timers import PerfCounterTimer, synchronize
from devicebench.measure.config import InferenceConfig, TimingPolicy
from devicebench.measure.inference import InferenceOutcome, measure_inference
from devicebench.measure.stats import Summary, ratio_ci
from devicebench.measure.timing import measure_adaptive

__all__ = ["CrossoverPoint", "measure_crossover_point", "crossover_analysis"]

#: Copies are short and steady: a brief policy is enough.
TRANSFER_POLICY = TimingPolicy(warmup_iters=3, warmup_s=0.05, min_iters=10, min_time_s=0.2, max_time_s=2.0)


@dataclass
class CrossoverPoint:
    """One batch size on one device: the measurement and its copies (accelerators only)."""

    batch_size: int
    outcome: InferenceOutcome | None
    h2d_samples_ms: list[float] = field(default_factory=list)
    d2h_samples_ms: list[float] = field(default_factory=list)
    record: Any = None  # the InferenceRecord built from it (set by the caller)

    def transfer_dict(self) -> dict[str, Any] | None:
        if not self.h2d_samples_ms and not self.d2h_samples_ms:
            return None
        out: dict[str, Any] = {}
        for key, samples in (("h2d", self.h2d_samples_ms), ("d2h", self.d2h_samples_ms)):
            if samples:
                s = Summary.from_samples(samples)
                out[f"{key}_median_ms"] = s.median
                out[f"{key}_ci95"] = list(s.ci95)
                out[f"{key}_samples_ms"] = samples
        return out


def measure_crossover_point(config: InferenceConfig) -> CrossoverPoint:
    """Measure one sweep point (runs in a worker); never raises for a failed measurement."""
    device = DeviceSpec.parse(config.device)
    wanted = replace(config, keep_output=True) if device.is_accelerator else config
    outcome = measure_inference(wanted)
    point = CrossoverPoint(config.batch_size, outcome)
    if not device.is_accelerator or outcome.status != "ok" or outcome.output is None:
        outcome.output = None
        return point
    try:
        from devicebench.workloads.registry import get_model_entry

        entry = get_model_entry(config.model)
        host_inputs = entry.input.example(config.batch_size, config.seed)
        dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[config.precision]
        host_inputs = tuple(x.to(dtype) if x.is_floating_point() else x for x in host_inputs)
        timer = PerfCounterTimer(sync=lambda: synchronize(device), name="perf_counter")
        target = device.torch_device

        def h2d() -> object:
            return tuple(x.to(target) for x in host_inputs)

        from devicebench.measure.parity import first_tensor

        dev_out = first_tensor(outcome.output).to(target)
        synchronize(device)

        def d2h() -> object:
            return dev_out.cpu()

        point.h2d_samples_ms = measure_adaptive(timer, h2d, TRANSFER_POLICY).samples_ms
        point.d2h_samples_ms = measure_adaptive(timer, d2h, TRANSFER_POLICY).samples_ms
    except Exception as exc:  # noqa: BLE001 - the copies are extra detail, the point stands
        outcome.message = f"copy timing failed: {type(exc).__name__}: {exc}"[:300]
    outcome.output = None
    return point


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
                transfer = rec.transfer_ms or {}
                row["h2d_ms"] = transfer.get("h2d_median_ms")
                row["d2h_ms"] = transfer.get("d2h_median_ms")
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
