"""The typed parts of an inference record that measure/ has no dataclass for.

Each part says what it carries and writes exactly the JSON object documented in
docs/results-schema.md (:meth:`to_dict`); :meth:`from_dict` reads that object from today's
files and older ones: a missing key takes its default, a key it does not know is ignored.
Parts that measure/ already defines are reused as they are: ``ColdStart``
(:mod:`devicebench.measure.inference`), ``MemoryStats`` (:mod:`devicebench.measure.memory`),
``ParityResult`` (:mod:`devicebench.measure.parity`), and inside these parts
``EnergyReading``, ``SustainedWindow`` and ``TimingPolicy``.

Some JSON keys are absent rather than null when they do not apply (a crossover record's
``tuning`` has no ``winner``; ``timing`` has no ``e2e_*`` keys on the CPU): a part leaves out
those keys when the attribute is ``None``, as each ``to_dict`` documents.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, TypeVar

from devicebench.measure.config import TimingPolicy
from devicebench.measure.energy import EnergyReading
from devicebench.measure.stats import Summary
from devicebench.measure.sustained import SustainedWindow
from devicebench.measure.timing import TimingRun

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "from_known",
    "EnergyUse",
    "ThrottleSummary",
    "SustainedRun",
    "TuningInfo",
    "TransferTimes",
    "TimingInfo",
]

D = TypeVar("D", bound="DataclassInstance")


def from_known(cls: type[D], data: Mapping[str, Any]) -> D:
    """``cls`` built from the keys of ``data`` that it has fields for (the others ignored;
    the missing ones take their defaults).

    Raises:
        TypeError: ``data`` is not a mapping (a file holding a list or a number there).
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"{cls.__name__} expects a JSON object, got {type(data).__name__}")
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


def _drop_none(data: dict[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    for key in keys:
        if key in data and data[key] is None:
            del data[key]
    return data


@dataclass
class EnergyUse:
    """Energy of the compute loop (``InferenceRecord.energy``), every figure tagged with its source.

    Attributes:
        source: the sources used, joined by ``+`` (``nvml+rapl``), ``estimate-tdp``, or ``none``.
        measured: false as soon as one reading is an estimate.
        joules_per_item, joules_per_call, mean_power_w: summed over the readings, idle
            baseline subtracted.
        readings: one per counter read (or the TDP estimate).
        notes: why a counter could not be used.
    """

    source: str = "none"
    measured: bool = False
    joules_per_item: float = 0.0
    joules_per_call: float = 0.0
    mean_power_w: float = 0.0
    readings: list[EnergyReading] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def idle_power_w(self) -> float | None:
        """The measured idle power summed over the counters (``None``: no counter measured it)."""
        idle = [r.idle_power_w for r in self.readings if r.idle_power_w is not None]
        return sum(idle) if idle else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EnergyUse:
        energy = from_known(cls, data)
        energy.readings = [from_known(EnergyReading, r) for r in data.get("readings", [])]
        return energy


@dataclass
class ThrottleSummary:
    """Late against early throughput of a sustained run (``SustainedRun.summary``).

    ``change`` is late / early - 1, ``None`` (with no early and late figures) when there
    were too few windows to tell; ``text`` says it in words.
    """

    change: float | None = None
    early_items_per_s: float | None = None
    late_items_per_s: float | None = None
    text: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON object; ``early_items_per_s`` and ``late_items_per_s`` only when known."""
        return _drop_none(asdict(self), ("early_items_per_s", "late_items_per_s"))


@dataclass
class SustainedRun:
    """Sustained mode (``infer --duration``, ``InferenceRecord.sustained``): throughput per window.

    Attributes:
        duration_s: the requested duration; window_s: the length of one window.
        device_probe: ``nvml`` when the GPU's clocks and temperature were read between
            windows, else ``none``.
        windows: one per window, in order.
        summary: late against early throughput.
        note: why NVML could not be opened on a GPU (``None``: nothing to say).
    """

    duration_s: float
    window_s: float
    device_probe: str = "none"
    windows: list[SustainedWindow] = field(default_factory=list)
    summary: ThrottleSummary = field(default_factory=ThrottleSummary)
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object; ``note`` only when there is one."""
        data = asdict(self)
        data["summary"] = self.summary.to_dict()
        return _drop_none(data, ("note",))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SustainedRun:
        run = from_known(cls, data)
        run.windows = [from_known(SustainedWindow, w) for w in data.get("windows", [])]
        run.summary = from_known(ThrottleSummary, data.get("summary") or {})
        return run


Speedup = tuple[float, float, float]


@dataclass
class TuningInfo:
    """A record's role in a tuning run (``InferenceRecord.tuning``; docs/tuning.md).

    Attributes:
        role: ``naive``, ``best``, ``finalist`` or ``crossover``.
        candidate: the configuration measured (e.g. ``"ort fp32 t1"``).
        batch_size: the batch size tuned or swept.
        source: ``measured`` (tuned in this run) or ``cache``; ``None`` on crossover records.
        winner, why: the device's tuned winner and why it won (naive and best records only).
        speedup_vs_naive, speedup_vs_ort: (ratio, low, high) of the naive's (or ONNX Runtime
            alone's) median over the winner's; ``None`` when not measured.
    """

    role: str = ""
    candidate: str = ""
    batch_size: int | None = None
    source: str | None = None
    winner: str | None = None
    why: str | None = None
    speedup_vs_naive: Speedup | None = None
    speedup_vs_ort: Speedup | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: ``batch_size`` and ``source`` when set; ``winner``, ``why`` and both
        speedups (null when not measured) together, on the records that carry a verdict."""
        data = asdict(self)
        for key in ("speedup_vs_naive", "speedup_vs_ort"):
            if data[key] is not None:
                data[key] = list(data[key])
        keys = ["batch_size", "source"]
        if self.winner is None:
            keys += ["winner", "why", "speedup_vs_naive", "speedup_vs_ort"]
        return _drop_none(data, keys)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TuningInfo:
        info = from_known(cls, data)
        for key in ("speedup_vs_naive", "speedup_vs_ort"):
            value = getattr(info, key)
            if value is not None:
                setattr(info, key, tuple(value))
        return info


def _copy_summary(samples: list[float]) -> Summary | None:
    return Summary.from_samples(samples) if samples else None


@dataclass
class TransferTimes:
    """Host<->device copies of a crossover point on an accelerator (``InferenceRecord.transfer_ms``).

    Only the raw samples are kept; the median and interval written beside them are computed
    from them (:attr:`h2d`, :attr:`d2h`).

    Attributes:
        h2d_samples_ms: copying the inputs host to device, one sample per copy.
        d2h_samples_ms: copying the output device to host.
    """

    h2d_samples_ms: list[float] = field(default_factory=list)
    d2h_samples_ms: list[float] = field(default_factory=list)

    @classmethod
    def from_samples(cls, h2d_samples_ms: list[float], d2h_samples_ms: list[float]) -> TransferTimes | None:
        """The copies of one point, or ``None`` when none was timed (on the CPU)."""
        if not h2d_samples_ms and not d2h_samples_ms:
            return None
        return cls(list(h2d_samples_ms), list(d2h_samples_ms))

    @property
    def h2d(self) -> Summary | None:
        return _copy_summary(self.h2d_samples_ms)

    @property
    def d2h(self) -> Summary | None:
        return _copy_summary(self.d2h_samples_ms)

    def to_dict(self) -> dict[str, Any]:
        """``{h2d,d2h}_median_ms``, ``_ci95`` and ``_samples_ms`` for each direction timed."""
        out: dict[str, Any] = {}
        for key, samples, summary in (("h2d", self.h2d_samples_ms, self.h2d), ("d2h", self.d2h_samples_ms, self.d2h)):
            if summary is not None:
                out[f"{key}_median_ms"] = summary.median
                out[f"{key}_ci95"] = list(summary.ci95)
                out[f"{key}_samples_ms"] = samples
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TransferTimes:
        return from_known(cls, data)


@dataclass
class TimingInfo:
    """How a record was measured (``InferenceRecord.timing``; docs/results-schema.md): the
    timing policy and seed, then each timed loop, ``None`` where it did not run.
    """

    policy: TimingPolicy | None = None
    seed: int | None = None
    #: The compute loop's clock: ``perf_counter``, ``cuda-events``, ``perf_counter+sync``.
    timer: str | None = None
    #: Warm-up calls and seconds.
    warmup_iters: int | None = None
    warmup_s: float | None = None
    #: Samples kept, and the seconds the loop took.
    iterations: int | None = None
    elapsed_s: float | None = None
    #: ``ci_target``, ``time_cap`` or ``max_iters``.
    stop_reason: str | None = None
    #: Cores' worth of CPU other processes used meanwhile (``None`` also when unreadable).
    other_cpu_load: float | None = None
    #: The same for the end-to-end loop (accelerators only).
    e2e_timer: str | None = None
    e2e_iterations: int | None = None
    e2e_elapsed_s: float | None = None
    e2e_stop_reason: str | None = None
    #: The end-to-end loop's warm-up seconds (absent in older files).
    e2e_warmup_s: float | None = None

    @classmethod
    def of(cls, policy: TimingPolicy, seed: int, compute: TimingRun | None = None,
           e2e: TimingRun | None = None) -> TimingInfo:
        """The timing of a measurement: its policy and seed, and each loop that ran."""
        info = cls(policy=policy, seed=seed)
        if compute is not None:
            info = replace(
                info,
                timer=compute.timer,
                warmup_iters=compute.warmup_iters,
                warmup_s=round(compute.warmup_s, 4),
                iterations=len(compute.samples_ms),
                elapsed_s=round(compute.elapsed_s, 4),
                stop_reason=compute.stop_reason,
                other_cpu_load=compute.other_cpu_load,
            )
        if e2e is not None:
            info = replace(
                info,
                e2e_timer=e2e.timer,
                e2e_iterations=len(e2e.samples_ms),
                e2e_elapsed_s=round(e2e.elapsed_s, 4),
                e2e_stop_reason=e2e.stop_reason,
                e2e_warmup_s=round(e2e.warmup_s, 4),
            )
        return info

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: the keys that are set, and ``other_cpu_load`` (null when
        unreadable) whenever the compute loop ran."""
        data = asdict(self)
        keep = {"other_cpu_load"} if self.iterations is not None else set()
        return _drop_none(data, [k for k in data if k not in keep])

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TimingInfo:
        info = from_known(cls, data)
        if info.policy is not None:  # a policy that is not an object is a TypeError here
            info.policy = from_known(TimingPolicy, data["policy"])
        return info
