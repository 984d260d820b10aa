"""The records devicebench keeps: typed dataclasses, JSON-ready, raw samples included.

Field names follow ``docs/results-schema.md`` so that other tools can read them; bump
:data:`SCHEMA_VERSION` when a field changes meaning or is removed. An inference record's
objects (cold start, memory, timing, energy, parity, tuning...) are typed parts: the
dataclasses of measure/ where one exists, else those of :mod:`.parts`.
"""

from __future__ import annotations

import copy
import dataclasses
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from functools import partial
from typing import Any

from devicebench.devices.discovery import DeviceRef
from devicebench.devices.transfer import TransferProbe
from devicebench.measure.config import InferenceConfig
from devicebench.measure.inference import ColdStart, InferenceOutcome
from devicebench.measure.memory import MemoryStats
from devicebench.measure.parity import ParityResult
from devicebench.measure.stats import Summary
from devicebench.measure.training import EpochRow, TrainingOutcome
from devicebench.results.parts import (
    EnergyUse,
    SustainedRun,
    TimingInfo,
    TransferTimes,
    TuningInfo,
    from_known,
)

__all__ = ["SCHEMA_VERSION", "DeviceRef", "InferenceRecord", "EpochRow", "TrainingRecord", "RunInfo", "new_run_id", "utc_now"]

#: Version of the JSON records and of the files that hold them.
SCHEMA_VERSION = 1


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus 6 random hex digits."""
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


@dataclass
class InferenceRecord:
    """One measured (or failed) inference configuration. See docs/results-schema.md."""

    run_id: str
    model: str
    device: DeviceRef
    batch_size: int
    precision: str
    status: str
    message: str = ""
    weights: str = "random"
    task: str = ""
    parameters: int = 0
    threads: int = 0
    interop_threads: int = 0
    input_shape: list[list[int]] = field(default_factory=list)
    input_source: str = ""
    latency_ms: Summary | None = None
    e2e_latency_ms: Summary | None = None
    samples_ms: list[float] = field(default_factory=list)
    e2e_samples_ms: list[float] = field(default_factory=list)
    throughput_per_s: float | None = None
    e2e_throughput_per_s: float | None = None
    cold_start: ColdStart | None = None
    memory: MemoryStats | None = None
    timing: TimingInfo = field(default_factory=TimingInfo)
    environment: dict[str, Any] = field(default_factory=dict)
    #: Tuning (issue 6, docs/tuning.md): how the model ran, its parity with CPU fp32 eager,
    #: its role in a tuning run, and host<->device copy times of a crossover point.
    variant: str = "eager"
    parity: ParityResult | None = None
    tuning: TuningInfo | None = None
    transfer_ms: TransferTimes | None = None
    timestamp: str = field(default_factory=utc_now)
    record_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    kind: str = "inference"
    #: Energy of the compute loop (issue 7), counters or a labelled estimate; see docs/reports.md.
    energy: EnergyUse | None = None
    #: Sustained mode (issue 7, ``infer --duration``): throughput and device state per window.
    sustained: SustainedRun | None = None
    schema_version: int = SCHEMA_VERSION
    #: A user model file (issue 5): path, format, sha256, inputs; ``None`` for registered models.
    model_file: dict[str, Any] | None = None
    #: End to end on an accelerator: ``pageable`` or ``pinned`` host buffers (issue 13;
    #: ``None`` on the CPU, and in older files, which were all pageable).
    host_memory: str | None = None
    #: Host<->device copy speed on this device, pinned and pageable, with the copy size
    #: (issue 13); on the CPU it says "not applicable".
    transfer_probe: TransferProbe | None = None
    #: Where the configuration's wall time went (issue 14): Unix seconds of the parent's
    #: request and of its reading the answer (``requested``, ``answered``) and of the
    #: worker's moments (``worker_start``, ``first_call_start``, ``loop_end``, ``worker_end``);
    #: ``None`` in older files.
    timeline: dict[str, float] | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def user_latency(self) -> Summary | None:
        """What a user waits for: end to end on an accelerator, compute on the CPU."""
        return self.e2e_latency_ms or self.latency_ms

    @property
    def headline_ms(self) -> float | None:
        """The median a user waits for (indexed in the store)."""
        return self.user_latency.median if self.user_latency else None

    @property
    def user_samples(self) -> list[float]:
        return self.e2e_samples_ms or self.samples_ms

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of docs/results-schema.md (each part writes its own)."""
        data = asdict(self)
        for key in _PARTS:
            part = getattr(self, key)
            data[key] = part.to_dict() if part is not None else None
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InferenceRecord:
        """Read a record of this schema version or an older one (missing keys take their
        defaults; unknown keys are ignored)."""
        data = dict(data)
        data["device"] = DeviceRef(**data["device"])
        for key, parse in _PARTS.items():
            value = data.pop(key, None)
            if value is not None:
                data[key] = parse(value)
        return from_known(cls, data)

    @classmethod
    def from_outcome(cls, run_id: str, config: InferenceConfig, outcome: InferenceOutcome) -> InferenceRecord:
        """Combine what was asked (config) with what was measured (outcome)."""
        spec = config.device
        record = cls(
            run_id=run_id,
            model=config.model,
            device=DeviceRef(spec.type, spec.index, outcome.device_name),
            batch_size=config.batch_size,
            precision=config.precision,
            status=outcome.status,
            message=outcome.message,
            weights=(outcome.weights if config.weights is None or outcome.weights != "random"
                     else f"file:{config.weights} (not loaded)"),
            task=outcome.task,
            parameters=outcome.parameters,
            threads=outcome.threads,
            interop_threads=outcome.interop_threads,
            input_shape=outcome.input_shape or [],
            input_source=outcome.input_source,
            cold_start=outcome.cold_start,
            memory=outcome.memory,
            environment=outcome.environment.to_dict() if outcome.environment else {},
            energy=EnergyUse.from_dict(outcome.energy) if outcome.energy else None,
            sustained=SustainedRun.from_dict(outcome.sustained) if outcome.sustained else None,
            model_file=outcome.model_file or (config.user_model.describe() if config.user_model else None),
            variant=config.variant,
            host_memory=outcome.host_memory,
            transfer_probe=outcome.transfer,
            timeline=dict(outcome.timeline) if getattr(outcome, "timeline", None) else None,
        )
        compute = outcome.compute if outcome.compute is not None and outcome.compute.samples_ms else None
        e2e = outcome.e2e if outcome.e2e is not None and outcome.e2e.samples_ms else None
        if compute is not None:
            record.samples_ms = compute.samples_ms
            record.latency_ms = _summary(compute, config)
            record.throughput_per_s = config.batch_size / (record.latency_ms.median / 1e3)
        if e2e is not None:
            record.e2e_samples_ms = e2e.samples_ms
            record.e2e_latency_ms = _summary(e2e, config)
            record.e2e_throughput_per_s = config.batch_size / (record.e2e_latency_ms.median / 1e3)
        record.timing = TimingInfo.of(config.policy, config.seed, compute, e2e)
        return record


def _summary(run: Any, config: InferenceConfig) -> Summary:
    """The loop's summary as the worker made it (numpy is not imported for it here), or made
    now from its samples (an outcome measured before workers summarised, a stand-in, or samples
    changed since: a summary whose count, minimum or maximum no longer match them is not used)."""
    made = getattr(run, "summary", None)
    samples = run.samples_ms
    if (isinstance(made, Summary) and samples and made.n == len(samples)
            and made.min == min(samples) and made.max == max(samples)):
        return made
    return Summary.from_samples(samples, cut_short=_cut_short(run, config))


def _cut_short(run: Any, config: InferenceConfig) -> bool:
    """The time cap stopped the loop before the policy's minimum count of samples."""
    return run.stop_reason == "time_cap" and len(run.samples_ms) < config.policy.min_iters


#: The typed parts of an inference record and how each is read from its JSON object.
_PARTS: dict[str, Callable[[Any], Any]] = {
    "latency_ms": Summary.from_dict,
    "e2e_latency_ms": Summary.from_dict,
    "cold_start": partial(from_known, ColdStart),
    "memory": partial(from_known, MemoryStats),
    "timing": TimingInfo.from_dict,
    "parity": partial(from_known, ParityResult),
    "tuning": TuningInfo.from_dict,
    "transfer_ms": TransferTimes.from_dict,
    "energy": EnergyUse.from_dict,
    "sustained": SustainedRun.from_dict,
    "transfer_probe": TransferProbe.from_dict,
}


@dataclass
class RunInfo:
    """One invocation of devicebench: what was asked, when, where, and how it ended.

    ``status`` is ``running`` while it runs, then ``complete``, ``interrupted`` or ``failed``.
    """

    run_id: str
    command: str
    started_at: str = field(default_factory=utc_now)
    finished_at: str | None = None
    status: str = "running"
    tool_version: str = ""
    hostname: str = ""
    environment: dict[str, Any] = field(default_factory=dict)
    n_records: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunInfo:
        return from_known(cls, data)


@dataclass
class TrainingRecord(TrainingOutcome):
    """One training run of a model on one device: what the loop measured
    (:class:`~devicebench.measure.training.TrainingOutcome`) with the run it belongs to.
    See docs/results-schema.md."""

    run_id: str = ""
    timestamp: str = field(default_factory=utc_now)
    record_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    kind: str = "training"
    schema_version: int = SCHEMA_VERSION

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def headline_ms(self) -> float | None:
        """Median epoch time in ms (indexed in the store)."""
        if not self.epochs:
            return None
        times = sorted(e.epoch_s for e in self.epochs)
        return 1e3 * times[len(times) // 2]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_outcome(cls, run_id: str, outcome: TrainingOutcome, *, record_id: str | None = None) -> TrainingRecord:
        """The record of what training measured; ``record_id`` keeps one record rewritten
        after every epoch."""
        # Copies of the lists and dicts: the loop goes on filling the outcome's own.
        fields = {f.name: copy.copy(getattr(outcome, f.name)) for f in dataclasses.fields(TrainingOutcome)}
        record = cls(**fields, run_id=run_id)
        if record_id is not None:
            record.record_id = record_id
        return record

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingRecord:
        data = dict(data)
        data["device"] = DeviceRef(**data["device"])
        data["epochs"] = [EpochRow(**e) for e in data.get("epochs", [])]
        return from_known(cls, data)
