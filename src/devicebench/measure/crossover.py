"""The batch size where the GPU starts to win: a sweep, end to end, copies timed apart.

Each point is one configuration (a device's tuned winner at one batch size) measured in its
own worker by :func:`measure_crossover_point`: compute-only and end-to-end latency as usual
(:func:`.inference.measure_inference`), and on an accelerator, in the same worker, the
host-to-device copy of the inputs and the device-to-host copy of the output, each timed on
its own with the device synchronised. On the CPU there is nothing to copy.

The sweep over batch sizes and its analysis (:func:`devicebench.run.tuning.sweep.crossover_analysis`)
belong to the tuning run.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch

from devicebench.devices.timers import PerfCounterTimer, synchronize
from devicebench.measure.config import InferenceConfig, TimingPolicy
from devicebench.measure.inference import InferenceOutcome, measure_inference
from devicebench.measure.timing import measure_adaptive

__all__ = ["CrossoverPoint", "measure_crossover_point"]

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


def measure_crossover_point(config: InferenceConfig) -> CrossoverPoint:
    """Measure one sweep point (runs in a worker); never raises for a failed measurement."""
    device = config.device
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
