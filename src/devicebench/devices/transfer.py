"""Host<->device copy speed: how fast inputs reach an accelerator and answers come back.

End-to-end latency on an accelerator pays for two copies, and their speed depends on the host
buffer: a *pageable* buffer (what ``torch.tensor`` and numpy give you) is first copied by the
driver into a pinned staging buffer, while a *pinned* (page-locked) buffer is read by the
copy engine directly and can be copied asynchronously. :func:`measure_transfer` times both
ways in both directions on one device, with the copy size it used, so that a table can say
"H2D 24.1 GB/s pinned, 11.3 GB/s pageable (64 MiB copies)".

Each copy is timed on the host clock with the device synchronised before and after (what a
user waits for), the median of ``repeats`` copies after two warm-up copies. GB is 10^9 bytes.
On the CPU there is nothing to copy: the probe says "not applicable".
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from devicebench.devices.discovery import DeviceSpec
from devicebench.devices.prepare import use_device
from devicebench.devices.timers import synchronize

__all__ = ["DEFAULT_COPY_BYTES", "NOT_APPLICABLE", "TransferProbe", "measure_transfer", "measure_transfers",
           "time_copy"]

#: 64 MiB: large enough that the copy engine's bandwidth, not the call overhead, sets the time.
DEFAULT_COPY_BYTES = 64 * 2**20
#: What the probe says on a device with no host-device copy.
NOT_APPLICABLE = "not applicable: the CPU computes on host memory, nothing is copied"


@dataclass
class TransferProbe:
    """Copy speed between host and one device (``None`` where a way was not measured).

    Attributes:
        device: ``cuda:0``...
        applicable: false on the CPU (no copy exists).
        copy_bytes: bytes per copy.
        repeats: copies timed per figure (after two warm-up copies).
        h2d_pageable_gbps, h2d_pinned_gbps: host to device, GB/s (10^9 bytes per second).
        d2h_pageable_gbps, d2h_pinned_gbps: device to host.
        note: why something was not measured.
    """

    device: str
    applicable: bool = True
    copy_bytes: int = 0
    repeats: int = 0
    h2d_pageable_gbps: float | None = None
    h2d_pinned_gbps: float | None = None
    d2h_pageable_gbps: float | None = None
    d2h_pinned_gbps: float | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TransferProbe:
        if not isinstance(data, Mapping):
            raise TypeError(f"TransferProbe expects a JSON object, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def text(self) -> str:
        """One line for a table: both directions, pinned then pageable, and the copy size."""
        if not self.applicable:
            return self.note or NOT_APPLICABLE

        def way(pinned: float | None, pageable: float | None) -> str:
            bits = [f"{v:.1f} GB/s {label}" for v, label in ((pinned, "pinned"), (pageable, "pageable")) if v]
            return ", ".join(bits) or "not measured"

        size = f"{self.copy_bytes / 2**20:.0f} MiB copies" if self.copy_bytes else "?"
        text = (f"H2D {way(self.h2d_pinned_gbps, self.h2d_pageable_gbps)}; "
                f"D2H {way(self.d2h_pinned_gbps, self.d2h_pageable_gbps)} ({size}, median of {self.repeats})")
        return text + (f"; {self.note}" if self.note else "")


def time_copy(copy: Callable[[], object], sync: Callable[[], None], *, repeats: int,
              clock: Callable[[], float] = time.perf_counter) -> float:
    """Median seconds of one ``copy`` with the device drained before and after (two warm-ups)."""
    for _ in range(2):
        sync()
        copy()
        sync()
    samples = []
    for _ in range(max(1, repeats)):
        sync()
        t0 = clock()
        copy()
        sync()
        samples.append(clock() - t0)
    return statistics.median(samples)


def _gbps(nbytes: int, seconds: float) -> float | None:
    return round(nbytes / seconds / 1e9, 2) if seconds > 0 else None


def measure_transfer(device: DeviceSpec, *, copy_bytes: int = DEFAULT_COPY_BYTES, repeats: int = 10) -> TransferProbe:
    """Time host->device and device->host copies of ``copy_bytes`` on ``device``, from pageable
    and (on CUDA) pinned host memory. Call in a worker: it initialises the device.

    Never raises for a failed copy: the probe carries the reason in ``note``.
    """
    import torch

    if not device.is_accelerator:
        return TransferProbe(device.torch_device, applicable=False, note=NOT_APPLICABLE)
    probe = TransferProbe(device.torch_device, copy_bytes=copy_bytes, repeats=repeats)
    target = device.torch_device
    n = copy_bytes // 4
    try:
        def sync() -> None:
            synchronize(device)

        dev = torch.empty(n, dtype=torch.float32, device=target)
        pageable = torch.rand(n, dtype=torch.float32)
        probe.h2d_pageable_gbps = _gbps(copy_bytes, time_copy(lambda: dev.copy_(pageable), sync, repeats=repeats))
        probe.d2h_pageable_gbps = _gbps(copy_bytes, time_copy(lambda: pageable.copy_(dev), sync, repeats=repeats))
        if device.type == "cuda":
            pinned = pageable.pin_memory()
            probe.h2d_pinned_gbps = _gbps(copy_bytes, time_copy(
                lambda: dev.copy_(pinned, non_blocking=True), sync, repeats=repeats))
            probe.d2h_pinned_gbps = _gbps(copy_bytes, time_copy(
                lambda: pinned.copy_(dev, non_blocking=True), sync, repeats=repeats))
        else:
            probe.note = f"pinned host memory is a CUDA notion: {device.type} measured pageable only"
    except Exception as exc:  # noqa: BLE001 - a side measurement: say why, never fail the caller
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        probe.note = f"copy timing failed: {type(exc).__name__}: {first}"[:300]
    return probe


def measure_transfers(devices: list[DeviceSpec]) -> list[TransferProbe]:
    """:func:`measure_transfer` for each device (a worker entry point: one fresh process)."""
    probes = []
    for device in devices:
        use_device(device)
        probes.append(measure_transfer(device))
    return probes
