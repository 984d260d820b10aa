"""Energy of a timed loop, from hardware counters where they exist, labelled where they don't.

Sources, in order of preference, each figure tagged with the one it came from:

* ``nvml``: NVIDIA's total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``, mJ since
  the driver loaded; Volta and newer), read through ``nvidia-ml-py``.
* ``rapl``: Intel/AMD RAPL package counters through Linux powercap
  (``/sys/class/powercap/intel-rapl:N/energy_uj``), when this user may read them. The counter
  wraps at ``max_energy_range_uj``; one wrap between two reads is undone.
* ``estimate-tdp``: no counter: the device's thermal design power from :data:`TDP_TABLE`
  times the time. An upper-bound ESTIMATE, never passed off as measured.

Counters are read before and after the timed loop only: no sampling thread runs beside the
timed work. An idle baseline (the same counters over :data:`IDLE_BASELINE_S` seconds of
sleep, before the loop) is subtracted so that the figure is the energy the work added.
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from devicebench.devices.nvml import open_gpu

__all__ = [
    "TDP_TABLE",
    "TDP_TABLE_DATE",
    "IDLE_BASELINE_S",
    "EnergyCounter",
    "RaplCounter",
    "NvmlCounter",
    "EnergyReading",
    "EnergyMeter",
    "find_rapl_packages",
    "lookup_tdp",
    "counters_for",
    "tdp_estimate",
    "energy_summary",
    "EnergySession",
]

#: Seconds of idle (sleep) over which the baseline power is measured before the loop.
IDLE_BASELINE_S = 1.0

#: When :data:`TDP_TABLE` was compiled. The values are the vendors' published board or
#: package power limits (TDP/TBP/max TGP) as known on that date; they were not re-checked
#: online from the machine that wrote them.
TDP_TABLE_DATE = "2026-11-28"

#: Watts by name fragment (matched case-insensitively against the device name; the first
#: match wins, so longer, more specific fragments come first). Used only where no counter
#: can be read, and always labelled ``estimate-tdp``.
TDP_TABLE: tuple[tuple[str, float], ...] = (
    # NVIDIA data-centre GPUs
    ("H200", 700.0),
    ("H100 PCIe", 350.0),
    ("H100 NVL", 400.0),
    ("H100", 700.0),  # SXM5
    ("A100-PCIE", 250.0),
    ("A100 PCIe", 250.0),
    ("A100", 400.0),  # SXM4
    ("L40S", 350.0),
    ("L40", 300.0),
    ("L4", 72.0),
    ("A10G", 150.0),
    ("A10", 150.0),
    ("T4", 70.0),
    ("V100", 300.0),
    # NVIDIA consumer GPUs
    ("RTX 4090", 450.0),
    ("RTX 4080", 320.0),
    ("RTX 3090", 350.0),
    ("RTX 3080", 320.0),
    ("RTX 3060", 170.0),
    # Apple (whole SoC package, approximate)
    ("Apple MPS", 30.0),
)

#: Where a CPU's name is not in the table: watts per usable core (an assumption, stated as such).
CPU_WATTS_PER_CORE = 10.0


def lookup_tdp(name: str) -> float | None:
    """The table's watts for a device name, or ``None`` when no entry matches."""
    lowered = name.lower()
    for fragment, watts in TDP_TABLE:
        if fragment.lower() in lowered:
            return watts
    return None


class EnergyCounter:
    """A cumulative energy counter in joules (a subclass reads one hardware source)."""

    source: str = ""
    domain: str = ""

    def read_j(self) -> float:
        raise NotImplementedError

    def delta_j(self, before: float, after: float) -> float:
        """Energy between two reads (subclasses undo a counter wrap)."""
        return after - before

    def close(self) -> None:
        return None


class RaplCounter(EnergyCounter):
    """One RAPL powercap zone (``energy_uj``, wrapping at ``max_energy_range_uj``).

    Raises:
        OSError: the zone's counter cannot be read (missing, or root only since
            CVE-2020-8694).
    """

    source = "rapl"

    def __init__(self, zone: str | Path) -> None:
        self.zone = Path(zone)
        self._energy = self.zone / "energy_uj"
        try:
            self.max_uj = float((self.zone / "max_energy_range_uj").read_text().strip())
        except (OSError, ValueError):
            self.max_uj = 0.0
        try:
            name = (self.zone / "name").read_text().strip()
        except OSError:
            name = self.zone.name
        self.domain = name
        self.read_j()  # fail now, not in the middle of a measurement

    def read_j(self) -> float:
        return float(self._energy.read_text().strip()) / 1e6

    def delta_j(self, before: float, after: float) -> float:
        delta = after - before
        if delta < 0 and self.max_uj > 0:
            delta += self.max_uj / 1e6
        return delta


def find_rapl_packages(root: str | Path = "/sys/class/powercap") -> list[RaplCounter]:
    """Readable RAPL package zones (``intel-rapl:N``, not their sub-zones); empty when none."""
    found: list[RaplCounter] = []
    for zone in sorted(glob.glob(os.path.join(str(root), "intel-rapl:*"))):
        if zone.count(":") != 1:  # intel-rapl:0:0 is a sub-zone (core, uncore, dram)
            continue
        try:
            found.append(RaplCounter(zone))
        except (OSError, ValueError):
            continue
    return found


class NvmlCounter(EnergyCounter):
    """NVML's total energy counter of one NVIDIA GPU (millijoules since the driver loaded).

    Raises:
        RuntimeError: NVML is missing, or this GPU has no energy counter.
    """

    source = "nvml"

    def __init__(self, index: int, nvml: Any | None = None) -> None:
        self._nvml, self._handle = open_gpu(index, nvml)
        try:
            self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
        except Exception as exc:  # noqa: BLE001 - NVML raises its own hierarchy
            raise RuntimeError(f"no NVML energy counter on GPU {index}: {exc}") from None
        self.domain = f"gpu:{index}"

    def read_j(self) -> float:
        return float(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)) / 1e3

    def close(self) -> None:
        try:
            self._nvml.nvmlShutdown()
        except Exception:  # noqa: BLE001 - shutting down is best effort
            pass


@dataclass
class EnergyReading:
    """Energy of one timed loop on one source, as stored in ``InferenceRecord.energy``.

    Attributes:
        source: ``nvml``, ``rapl`` or ``estimate-tdp``.
        domain: what was counted (``gpu:0``, ``package-0``, or the device name for estimates).
        measured: true for counters, false for estimates.
        seconds: wall time of the loop.
        calls: model calls in the loop (warm-up included: the counters run across it).
        items_per_call: inputs per call (the batch size).
        joules: energy over the loop, idle baseline subtracted (never below zero).
        joules_gross: energy over the loop as the counter saw it (``None`` for estimates).
        idle_power_w: baseline power measured before the loop (``None`` for estimates).
        mean_power_w: ``joules / seconds`` (above idle).
        joules_per_call, joules_per_item: ``joules`` shared out.
        note: how an estimate was made, or why a counter was not used.
    """

    source: str
    domain: str
    measured: bool
    seconds: float
    calls: int
    items_per_call: int
    joules: float
    joules_gross: float | None = None
    idle_power_w: float | None = None
    mean_power_w: float = 0.0
    joules_per_call: float = 0.0
    joules_per_item: float = 0.0
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _finish(reading: EnergyReading) -> EnergyReading:
    if reading.seconds > 0:
        reading.mean_power_w = reading.joules / reading.seconds
    if reading.calls > 0:
        reading.joules_per_call = reading.joules / reading.calls
        reading.joules_per_item = reading.joules_per_call / max(1, reading.items_per_call)
    return reading


def tdp_estimate(
    device_name: str, *, seconds: float, calls: int, items_per_call: int, is_cpu: bool, cores: int | None = None
) -> EnergyReading:
    """An ESTIMATE from the TDP table: the device drawing its rated power for ``seconds``."""
    watts = lookup_tdp(device_name)
    if watts is not None:
        note = f"no energy counter: {device_name} at its rated {watts:.0f} W (TDP table of {TDP_TABLE_DATE}); an upper bound"
    elif is_cpu:
        n = max(1, cores or 1)
        watts = CPU_WATTS_PER_CORE * n
        note = (f"no energy counter and CPU not in the TDP table: assumed {CPU_WATTS_PER_CORE:.0f} W "
                f"per core x {n} cores; a rough guess")
    else:
        watts = 0.0
        note = f"no energy counter and {device_name} is not in the TDP table: no estimate"
    return _finish(EnergyReading(
        source="estimate-tdp", domain=device_name, measured=False, seconds=seconds, calls=calls,
        items_per_call=items_per_call, joules=watts * seconds, note=note,
    ))


def counters_for(device_type: str, index: int | None, *, rapl_root: str | Path = "/sys/class/powercap",
                 nvml: Any | None = None) -> tuple[list[EnergyCounter], list[str]]:
    """The counters that can see a device's energy, and why others could not be used.

    A CUDA GPU gets its NVML counter; every device also gets the CPU package counters (the
    host drives the GPU, and on the CPU they are the device).
    """
    counters: list[EnergyCounter] = []
    notes: list[str] = []
    if device_type == "cuda":
        try:
            counters.append(NvmlCounter(index or 0, nvml))
        except RuntimeError as exc:
            notes.append(str(exc))
    rapl = find_rapl_packages(rapl_root)
    if rapl:
        counters.extend(rapl)
    else:
        notes.append("no readable RAPL counter (powercap missing or root only)")
    return counters, notes


@dataclass
class EnergyMeter:
    """Reads counters around a timed loop: :meth:`idle` first, then :meth:`start`, :meth:`stop`.

    Nothing runs between ``start`` and ``stop``: each is a handful of file or NVML reads.
    """

    counters: list[EnergyCounter]
    notes: list[str] = field(default_factory=list)
    clock: Callable[[], float] = time.perf_counter
    sleep: Callable[[float], None] = time.sleep
    _idle_w: dict[int, float] = field(default_factory=dict)
    _start: list[float] = field(default_factory=list)
    _t0: float = 0.0

    def _read_all(self) -> list[float]:
        return [c.read_j() for c in self.counters]

    def idle(self, seconds: float = IDLE_BASELINE_S) -> None:
        """Measure each counter's idle power over ``seconds`` of sleep."""
        if not self.counters or seconds <= 0:
            return
        before, t0 = self._read_all(), self.clock()
        self.sleep(seconds)
        after, t1 = self._read_all(), self.clock()
        span = max(t1 - t0, 1e-9)
        for i, counter in enumerate(self.counters):
            self._idle_w[i] = max(0.0, counter.delta_j(before[i], after[i]) / span)

    def start(self) -> None:
        self._start = self._read_all()
        self._t0 = self.clock()

    def stop(self, calls: int, items_per_call: int) -> list[EnergyReading]:
        """Readings since :meth:`start`, one per counter, idle baseline subtracted."""
        after, t1 = self._read_all(), self.clock()
        seconds = t1 - self._t0
        readings = []
        for i, counter in enumerate(self.counters):
            gross = counter.delta_j(self._start[i], after[i])
            idle_w = self._idle_w.get(i)
            net = max(0.0, gross - (idle_w or 0.0) * seconds)
            note = "" if idle_w is not None else "no idle baseline measured: gross energy"
            readings.append(_finish(EnergyReading(
                source=counter.source, domain=counter.domain, measured=True, seconds=seconds,
                calls=calls, items_per_call=items_per_call, joules=net, joules_gross=gross,
                idle_power_w=idle_w, note=note,
            )))
        return readings

    def close(self) -> None:
        for counter in self.counters:
            counter.close()


def energy_summary(readings: Sequence[EnergyReading], notes: Sequence[str] = ()) -> dict[str, Any]:
    """The ``energy`` field of a record: every reading, and their sum per item.

    ``source`` joins the sources used (``nvml+rapl``); ``measured`` is false as soon as one
    figure is an estimate.
    """
    sources = []
    for r in readings:
        if r.source not in sources:
            sources.append(r.source)
    return {
        "source": "+".join(sources) or "none",
        "measured": bool(readings) and all(r.measured for r in readings),
        "joules_per_item": sum(r.joules_per_item for r in readings),
        "joules_per_call": sum(r.joules_per_call for r in readings),
        "mean_power_w": sum(r.mean_power_w for r in readings),
        "readings": [r.to_dict() for r in readings],
        "notes": list(notes),
    }


class EnergySession:
    """Energy around one timed loop: counters where readable, else a labelled TDP estimate.

    ``begin`` measures the idle baseline and reads the counters; ``end`` reads them again.
    Never raises: energy is a side measurement and must not fail a configuration.
    """

    def __init__(self, device_type: str, index: int | None, device_name: str, *, cores: int | None = None,
                 rapl_root: str | Path = "/sys/class/powercap", nvml: Any | None = None,
                 idle_s: float = IDLE_BASELINE_S) -> None:
        self.device_type = device_type
        self.device_name = device_name
        self.cores = cores
        try:
            counters, notes = counters_for(device_type, index, rapl_root=rapl_root, nvml=nvml)
        except Exception as exc:  # noqa: BLE001 - any failure means "no counter"
            counters, notes = [], [f"energy counters unavailable: {exc}"]
        self.meter = EnergyMeter(counters, notes)
        self.idle_s = idle_s
        self._t0 = 0.0

    def begin(self) -> None:
        try:
            self.meter.idle(self.idle_s)
            self.meter.start()
        except Exception as exc:  # noqa: BLE001
            self.meter.notes.append(f"energy counter read failed: {exc}")
            self.meter.counters = []
        self._t0 = time.perf_counter()

    def end(self, calls: int, items_per_call: int) -> dict[str, Any]:
        """The ``energy`` field for the loop just timed."""
        seconds = time.perf_counter() - self._t0
        readings: list[EnergyReading] = []
        try:
            if self.meter.counters:
                readings = self.meter.stop(calls, items_per_call)
        except Exception as exc:  # noqa: BLE001
            self.meter.notes.append(f"energy counter read failed: {exc}")
        finally:
            self.meter.close()
        has_device_counter = any(r.source == "nvml" for r in readings) or (
            self.device_type == "cpu" and any(r.source == "rapl" for r in readings))
        if not has_device_counter:
            readings.append(tdp_estimate(self.device_name, seconds=seconds, calls=calls,
                                         items_per_call=items_per_call, is_cpu=self.device_type == "cpu",
                                         cores=self.cores))
        return energy_summary(readings, self.meter.notes)
