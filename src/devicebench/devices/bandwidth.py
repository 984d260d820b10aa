"""How fast can this device move memory? A large copy, timed, as the ceiling for LLM decode.

Decoding one token reads every weight (and the KV cache) once, so its speed is bound by
memory bandwidth. To say how close a decode gets to that bound, each device's bandwidth is
*measured* here, never taken from a data sheet:

* a copy ``dst.copy_(src)`` of a buffer much larger than the caches (256 MiB on the CPU by
  default, 1 GiB on an accelerator), repeated; each copy reads and writes the buffer once,
  so it moves ``2 x bytes``;
* on the CPU, torch's copy runs on its intra-op thread pool (all usable cores); on an
  accelerator, the device is synchronised inside the timed region (CUDA events);
* the figure kept is the best of the repetitions (the ceiling a workload can reach), with
  the median beside it.

A copy is what STREAM calls "copy": a device's read-only bandwidth (what decode needs) is
often a little higher, so a decode can in principle exceed 100% of this figure; the share is
a guide to how much is left, not a law.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from devicebench.devices.discovery import DeviceSpec
from devicebench.devices.timers import make_timer, synchronize

__all__ = ["DEFAULT_ACCELERATOR_BYTES", "DEFAULT_CPU_BYTES", "BandwidthProbe", "measure_bandwidth"]

DEFAULT_CPU_BYTES = 256 * 2**20
DEFAULT_ACCELERATOR_BYTES = 2**30


@dataclass
class BandwidthProbe:
    """One device's measured copy bandwidth.

    Attributes:
        device: the device label (``cpu``, ``cuda:0``).
        bytes: size of the buffer copied.
        peak_gbps: the best repetition's bandwidth, GB/s (1e9 bytes per second), counting
            the read and the write (2 x bytes per copy).
        median_gbps: the median repetition's.
        samples_gbps: every repetition's.
        threads: CPU threads used (``None`` on an accelerator).
        method: how it was measured, in words.
        error: why it could not be measured (then the figures are 0).
    """

    device: str
    bytes: int
    peak_gbps: float
    median_gbps: float
    samples_gbps: list[float] = field(default_factory=list)
    threads: int | None = None
    method: str = ""
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BandwidthProbe:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})


def measure_bandwidth(device: DeviceSpec, *, nbytes: int | None = None, repeats: int = 10) -> BandwidthProbe:
    """Time ``repeats`` copies of a large buffer on ``device`` (never raises: a failure is
    recorded in ``error``).

    Args:
        device: where to copy.
        nbytes: buffer size (default 256 MiB on the CPU, 1 GiB on an accelerator; halved
            until it fits).
        repeats: timed copies (one untimed copy first touches the pages).
    """
    size = nbytes or (DEFAULT_CPU_BYTES if device.type == "cpu" else DEFAULT_ACCELERATOR_BYTES)
    threads = torch.get_num_threads() if device.type == "cpu" else None
    method = (f"dst.copy_(src) of {size / 2**20:.0f} MiB, {repeats} times, read + write counted, "
              + ("perf_counter" if device.type == "cpu" else "device synchronised"))
    try:
        size, samples = _copy_samples(device, size, repeats)
        return BandwidthProbe(device.torch_device, size, max(samples), statistics.median(samples),
                              [round(s, 3) for s in samples], threads, method)
    except Exception as exc:  # noqa: BLE001 - a side measurement: recorded, never raised
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return BandwidthProbe(device.torch_device, size, 0.0, 0.0, [], threads, method, f"{type(exc).__name__}: {first}")


def _copy_samples(device: DeviceSpec, size: int, repeats: int) -> tuple[int, list[float]]:
    """(bytes copied, GB/s per repetition); the buffer is halved until it fits."""
    while True:
        try:
            src = torch.ones(size // 4, dtype=torch.float32, device=device.torch_device)
            dst = torch.empty_like(src)
            break
        except (RuntimeError, MemoryError):
            if size <= 16 * 2**20:
                raise
            size //= 2

    def copy() -> None:
        dst.copy_(src)

    copy()  # first touch: page faults and lazy allocation stay out of the timing
    synchronize(device)
    timer = make_timer(device)
    samples = [2 * src.numel() * 4 / max(timer.time_ns(copy), 1) for _ in range(max(1, repeats))]  # bytes/ns == GB/s
    if device.type == "cuda":
        del src, dst
        torch.cuda.empty_cache()
    return size, samples
