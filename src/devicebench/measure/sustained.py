"""Sustained mode: keep the device busy for a set time and record throughput per window, with
the GPU's clocks, temperature and power between windows, so that throttling shows as a curve.

The device state is read only between windows (a few NVML calls), never beside the timed
work; nothing runs in a thread.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from devicebench.devices.nvml import GpuIdentity, open_gpu
from devicebench.devices.timers import Timer

__all__ = ["SustainedWindow", "NvmlProbe", "window_length", "run_sustained", "throttle_summary"]


@dataclass
class SustainedWindow:
    """One window of a sustained run. Device fields are ``None`` where no probe could read them."""

    t_end_s: float
    calls: int
    items_per_s: float
    median_ms: float
    sm_clock_mhz: float | None = None
    mem_clock_mhz: float | None = None
    temperature_c: float | None = None
    power_w: float | None = None


class NvmlProbe:
    """Reads an NVIDIA GPU's SM and memory clocks, temperature and power through NVML.

    Raises:
        RuntimeError: NVML is missing or cannot open the GPU.
    """

    source = "nvml"

    def __init__(self, index: int, nvml: Any | None = None, identity: GpuIdentity | None = None) -> None:
        self._nvml, self._handle = open_gpu(index, nvml, identity)

    def _try(self, fn: Callable[[], float]) -> float | None:
        try:
            return float(fn())
        except Exception:  # noqa: BLE001 - a field this GPU does not report
            return None

    def read(self) -> dict[str, float | None]:
        n, h = self._nvml, self._handle
        power_mw = self._try(lambda: n.nvmlDeviceGetPowerUsage(h))
        return {
            "sm_clock_mhz": self._try(lambda: n.nvmlDeviceGetClockInfo(h, n.NVML_CLOCK_SM)),
            "mem_clock_mhz": self._try(lambda: n.nvmlDeviceGetClockInfo(h, n.NVML_CLOCK_MEM)),
            "temperature_c": self._try(lambda: n.nvmlDeviceGetTemperature(h, n.NVML_TEMPERATURE_GPU)),
            "power_w": power_mw / 1e3 if power_mw is not None else None,
        }

    def close(self) -> None:
        try:
            self._nvml.nvmlShutdown()
        except Exception:  # noqa: BLE001
            pass


def window_length(duration_s: float) -> float:
    """About 30 windows over the run, none shorter than half a second."""
    return max(0.5, duration_s / 30.0)


def throttle_summary(windows: list[SustainedWindow]) -> dict[str, Any]:
    """Throughput of the last quarter of windows against the first quarter (after the first)."""
    if len(windows) < 4:
        return {"change": None, "text": "too few windows to tell"}
    q = max(1, len(windows) // 4)
    # The first window is skipped: it can still carry warm-up effects.
    import numpy as np

    early = float(np.median([w.items_per_s for w in windows[1:1 + q]]))
    late = float(np.median([w.items_per_s for w in windows[-q:]]))
    change = late / early - 1.0
    text = f"throughput {change:+.1%} from the start to the end of the run"
    clocks = [w.sm_clock_mhz for w in windows if w.sm_clock_mhz]
    if clocks:
        text += f"; SM clock {clocks[0]:.0f} -> {clocks[-1]:.0f} MHz"
    temps = [w.temperature_c for w in windows if w.temperature_c is not None]
    if temps:
        text += f"; temperature {temps[0]:.0f} -> {temps[-1]:.0f} C"
    if change < -0.05:
        text += " (slowing down: throttling, thermal limits or other load on the machine)"
    return {"change": change, "early_items_per_s": early, "late_items_per_s": late, "text": text}


def run_sustained(
    timer: Timer,
    fn: Callable[[], object],
    *,
    duration_s: float,
    items_per_call: int,
    window_s: float | None = None,
    probe: Any | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Any]:
    """Call ``fn`` for ``duration_s`` seconds; return the per-window throughput and device state.

    The returned dict is the JSON of ``InferenceRecord.sustained`` (read into a
    ``devicebench.results.parts.SustainedRun``; see docs/results-schema.md).
    """
    import numpy as np

    window_s = window_s or window_length(duration_s)
    windows: list[SustainedWindow] = []
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        start = clock()
        while clock() - start < duration_s:
            samples: list[float] = []
            w0 = clock()
            while clock() - w0 < window_s:
                samples.append(timer.time_ns(fn) / 1e6)
            w1 = clock()
            state = probe.read() if probe is not None else {}  # between windows only
            windows.append(SustainedWindow(
                t_end_s=round(w1 - start, 4), calls=len(samples),
                items_per_s=len(samples) * items_per_call / max(w1 - w0, 1e-9),
                median_ms=float(np.median(samples)), **state,
            ))
    finally:
        if gc_was_enabled:
            gc.enable()
    return {
        "duration_s": duration_s,
        "window_s": window_s,
        "device_probe": getattr(probe, "source", None) or "none",
        "windows": [asdict(w) for w in windows],
        "summary": throttle_summary(windows),
    }


def sustained_for(device_type: str, index: int | None, timer: Timer, fn: Callable[[], object], *,
                  duration_s: float, items_per_call: int) -> dict[str, Any]:
    """:func:`run_sustained` with an NVML probe on CUDA GPUs where one can be opened."""
    probe = None
    note = ""
    if device_type == "cuda":
        try:
            probe = NvmlProbe(index or 0)
        except RuntimeError as exc:
            note = str(exc)
    try:
        result = run_sustained(timer, fn, duration_s=duration_s, items_per_call=items_per_call, probe=probe)
    finally:
        if probe is not None:
            probe.close()
    if note:
        result["note"] = note
    return result
