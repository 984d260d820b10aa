"""What to measure and how long: frozen, validated configuration values.

A configuration says what to run (:class:`InferenceConfig`) and how to time it
(:class:`TimingPolicy`); the code that executes it lives in :mod:`.inference`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from devicebench.devices.discovery import DeviceSpec
from devicebench.errors import ConfigError

if TYPE_CHECKING:
    from devicebench.workloads.userfile import UserModelSpec

__all__ = ["TimingPolicy", "InferenceConfig", "PRECISIONS", "DEFAULT_POLICY", "QUICK_POLICY"]

#: Precisions the eager path supports: the whole model and its float inputs cast to it.
PRECISIONS = ("fp32", "fp16", "bf16")


@dataclass(frozen=True)
class TimingPolicy:
    """How long to warm up and measure, and when to stop.

    Warm-up runs until at least ``warmup_iters`` calls AND ``warmup_s`` seconds have passed,
    but never longer than ``warmup_max_s`` (after at least one call). Measurement then runs
    until at least ``min_iters`` samples AND ``min_time_s`` seconds, and stops once the 99%
    interval of the median, looked at only at geometrically growing counts, lies within
    ``target_rel_ci`` of it (the 95% interval is reported; see
    :mod:`devicebench.measure.stats`); otherwise it stops at
    ``max_time_s`` (with at least 3 samples) or ``max_iters``.
    """

    warmup_iters: int = 5
    warmup_s: float = 0.5
    warmup_max_s: float = 10.0
    min_iters: int = 10
    min_time_s: float = 1.0
    max_time_s: float = 15.0
    max_iters: int = 100_000
    target_rel_ci: float = 0.02

    def __post_init__(self) -> None:
        if self.warmup_iters < 0 or self.warmup_s < 0 or self.warmup_max_s < 0:
            raise ConfigError("warm-up settings must be >= 0")
        if self.min_iters < 1:
            raise ConfigError(f"min_iters must be >= 1, got {self.min_iters}")
        if self.min_time_s < 0 or self.max_time_s <= 0:
            raise ConfigError("min_time_s must be >= 0 and max_time_s > 0")
        if self.max_time_s < self.min_time_s:
            raise ConfigError(
                f"max_time_s ({self.max_time_s}) must be >= min_time_s ({self.min_time_s})"
            )
        if self.max_iters < self.min_iters:
            raise ConfigError("max_iters must be >= min_iters")
        if not 0 < self.target_rel_ci < 1:
            raise ConfigError(f"target_rel_ci must be in (0, 1), got {self.target_rel_ci}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_POLICY = TimingPolicy()
#: For ``--quick``: warm-up of at most 3 s, then at most 3 s of timed calls per loop (an
#: accelerator has two loops, compute and end to end; the build and first call come on top).
QUICK_POLICY = TimingPolicy(
    warmup_iters=3, warmup_s=0.2, warmup_max_s=3.0, min_iters=5, min_time_s=0.5, max_time_s=3.0
)


@dataclass(frozen=True)
class InferenceConfig:
    """One inference configuration: a model on a device at a batch size and precision.

    Attributes:
        model: registered model name.
        device: where to run (a string such as ``"cuda:0"`` is parsed into a ``DeviceSpec``).
        batch_size: inputs per call.
        precision: ``fp32``, ``fp16`` or ``bf16``.
        threads: intra-op CPU threads (``None``: torch's default, recorded as measured).
        weights: optional local weights file; random weights otherwise.
        policy: warm-up and stopping rules.
        seed: seeds the weights and the inputs.
        sustained_s: when set, after the measurement keep the device busy this long and
            record throughput per window (see :mod:`.sustained`).
        user_model: a model file or folder (resolved by
            :func:`devicebench.workloads.userfile.resolve_user_model`) instead of a
            registered name; ``model`` is then its display name.
        variant: how the model is run: ``eager`` (plain PyTorch) or a ``+``-joined set of
            tuning features (``channels_last+compile``, ``ort``, ``int8-dynamic``...; see
            :mod:`devicebench.measure.variants`).
        keep_output: return the model's output on the example inputs (for the parity check).
        pinned: end-to-end timing on CUDA copies from and to pinned (page-locked) host
            buffers, asynchronously; pageable buffers (``False``, what a plain tensor is)
            otherwise. The record says which (``host_memory``).
        probe_copies: on an accelerator, also measure host<->device copy speed
            (:func:`devicebench.devices.transfer.measure_transfer`) after the timing.
    """

    model: str
    device: DeviceSpec = field(default_factory=lambda: DeviceSpec("cpu"))
    batch_size: int = 1
    precision: str = "fp32"
    threads: int | None = None
    weights: str | None = None
    policy: TimingPolicy = field(default_factory=TimingPolicy)
    seed: int = 0
    sustained_s: float | None = None
    user_model: UserModelSpec | None = None
    variant: str = "eager"
    keep_output: bool = False
    pinned: bool = False
    probe_copies: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.device, str):
            object.__setattr__(self, "device", DeviceSpec.parse(self.device))
        if self.sustained_s is not None and self.sustained_s <= 0:
            raise ConfigError(f"sustained duration must be > 0 s, got {self.sustained_s}")
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {self.batch_size}")
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"unknown precision {self.precision!r}: use one of {', '.join(PRECISIONS)}"
            )
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be >= 1, got {self.threads}")

    def label(self) -> str:
        extra = "" if self.variant == "eager" else f" {self.variant}"
        pinned = " pinned" if self.pinned and self.device.is_accelerator else ""
        return f"{self.model} {self.device} b{self.batch_size} {self.precision}{extra}{pinned}"
