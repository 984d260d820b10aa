"""One clock per device, chosen once, with the device synchronised inside the timed region.

Accelerators run asynchronously: a kernel launch returns long before the work is done, so a
host clock read without a synchronise can be 2-65x too fast. Each timer here makes sure the
region it reports covers the device work:

* CPU: ``time.perf_counter_ns`` around the call (the work is synchronous).
* CUDA / ROCm: CUDA events recorded on the measured device's current stream around the call,
  then a wait on the end event; the elapsed time is the device's own. The events and the
  stream are those of the timer's device, whichever device is current (the worker also makes
  it current: :func:`devicebench.devices.prepare.use_device`).
* MPS / XPU (and any device with a ``synchronize``): synchronize, ``perf_counter_ns``,
  call, synchronize, ``perf_counter_ns``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from devicebench.devices.discovery import DeviceSpec

__all__ = ["Timer", "PerfCounterTimer", "CudaEventTimer", "make_timer", "synchronize"]


def synchronize(device: DeviceSpec) -> None:
    """Wait until all queued work on ``device`` is done (a no-op on the CPU)."""
    import torch  # imported on first use: DeviceSpec readers never need it

    if device.type == "cuda":
        torch.cuda.synchronize(device.torch_device)
    elif device.type == "mps":
        torch.mps.synchronize()
    elif device.type == "xpu":
        torch.xpu.synchronize(device.torch_device)


class Timer(Protocol):
    """Times one call of ``fn`` and returns nanoseconds of the work it queued."""

    name: str

    def time_ns(self, fn: Callable[[], object]) -> int: ...


class PerfCounterTimer:
    """Host clock around the call; with ``sync``, the device is drained before and after.

    Args:
        sync: called before the start and before the end reading, inside the region, so that
            work queued by ``fn`` is counted. ``None`` for synchronous devices (the CPU).
    """

    def __init__(self, sync: Callable[[], None] | None = None, name: str = "perf_counter") -> None:
        self._sync = sync
        self.name = name if sync is None else f"{name}+sync"

    def time_ns(self, fn: Callable[[], object]) -> int:
        sync = self._sync
        if sync is not None:
            sync()
        start = time.perf_counter_ns()
        fn()
        if sync is not None:
            sync()
        return time.perf_counter_ns() - start


class CudaEventTimer:
    """CUDA events around the call on the device's current stream (works for ROCm builds too).

    The stream is looked up at each call (``torch.cuda.current_stream(device)``), not taken
    from whichever device happens to be current: on ``cuda:1`` an event recorded on
    ``cuda:0``'s stream would time nothing of the work.
    """

    name = "cuda-events"

    def __init__(self, device: DeviceSpec) -> None:
        import torch

        self._device = device
        self._current_stream = torch.cuda.current_stream  # looked up per call, no import there
        with torch.cuda.device(device.torch_device):
            self._start = torch.cuda.Event(enable_timing=True)
            self._end = torch.cuda.Event(enable_timing=True)

    def time_ns(self, fn: Callable[[], object]) -> int:
        self._start.record(self._current_stream(self._device.torch_device))
        fn()
        self._end.record(self._current_stream(self._device.torch_device))
        self._end.synchronize()
        return int(self._start.elapsed_time(self._end) * 1e6)


def make_timer(device: DeviceSpec, *, end_to_end: bool = False) -> Timer:
    """The timer to use for ``device``.

    Args:
        device: where the work runs.
        end_to_end: time on the host clock with synchronisation, as a user would see it,
            including host-device copies done inside ``fn``. Device events would hide the
            time the host spends waiting on a blocking copy, so they are only used for
            compute-only timing.
    """
    if device.type == "cpu":
        return PerfCounterTimer()
    if device.type == "cuda" and not end_to_end:
        return CudaEventTimer(device)
    return PerfCounterTimer(sync=lambda: synchronize(device))
