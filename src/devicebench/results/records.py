"""The records devicebench keeps: typed dataclasses, JSON-ready, raw samples included.

Field names follow ``docs/results-schema.md`` so that other tools can read them; bump
:data:`SCHEMA_VERSION` when a field changes meaning or is removed.
"""

from __future__ import annotations

import copy
import dataclasses
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from devicebench.devices.discovery import DeviceRef
from devicebench.measure.config import InferenceConfig
from devicebench.measure.inference import InferenceOutcome
from devicebench.measure.stats import Summary
from devicebench.measure.training import EpochRow, TrainingOutcome

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
    cold_start: dict[str, float] | None = None
    memory: dict[str, float | None] | None = None
    timing: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    #: Tuning (issue 6, docs/tuning.md): how the model ran, its parity with CPU fp32 eager,
    #: its role in a tuning run, and host<->device copy times of a crossover point.
    variant: str = "eager"
    parity: dict[str, Any] | None = None
    tuning: dict[str, Any] | None = None
    transfer_ms: dict[str, Any] | None = None
    timestamp: str = field(default_factory=utc_now)
    record_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    kind: str = "inference"
    #: Energy of the compute loop (issue 7): {"source": "nvml"|"rapl"|"estimate-tdp"|...,
    #: "measured", "joules_per_item", "mean_power_w", "readings": [...]}; see docs/reports.md.
    energy: dict[str, Any] | None = None
    #: Sustained mode (issue 7, ``infer --duration``): {"duration_s", "window_s", "device_probe",
    #: "windows": [{"t_end_s", "calls", "items_per_s", "median_ms", "sm_clock_mhz", ...}], "summary"}.
    sustained: dict[str, Any] | None = None
    schema_version: int = SCHEMA_VERSION
    #: A user model file (issue 5): path, format, sha256, inputs; ``None`` for registered models.
    model_file: dict[str, Any] | None = None

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
        data = asdict(self)
        for key in ("latency_ms", "e2e_latency_ms"):
            summary = getattr(self, key)
            data[key] = summary.to_dict() if summary is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InferenceRecord:
        data = dict(data)
        data["device"] = DeviceRef(**data["device"])
        for key in ("latency_ms", "e2e_latency_ms"):
            if data.get(key) is not None:
                data[key] = Summary.from_dict(data[key])
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})

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
            cold_start=asdict(outcome.cold_start) if outcome.cold_start else None,
            memory=outcome.memory.to_dict() if outcome.memory else None,
            environment=outcome.environment.to_dict() if outcome.environment else {},
            energy=getattr(outcome, "energy", None),
            sustained=getattr(outcome, "sustained", None),
            model_file=outcome.model_file or (config.user_model.describe() if config.user_model else None),
            variant=config.variant,
        )
        timing: dict[str, Any] = {"policy": config.policy.to_dict(), "seed": config.seed}
        if outcome.compute is not None and outcome.compute.samples_ms:
            run = outcome.compute
            record.samples_ms = run.samples_ms
            record.latency_ms = Summary.from_samples(run.samples_ms)
            record.throughput_per_s = config.batch_size / (record.latency_ms.median / 1e3)
            timing.update(
                timer=run.timer,
                warmup_iters=run.warmup_iters,
                warmup_s=round(run.warmup_s, 4),
                iterations=len(run.samples_ms),
                elapsed_s=round(run.elapsed_s, 4),
                stop_reason=run.stop_reason,
                other_cpu_load=run.other_cpu_load,
            )
        if outcome.e2e is not None and outcome.e2e.samples_ms:
            run = outcome.e2e
            record.e2e_samples_ms = run.samples_ms
            record.e2e_latency_ms = Summary.from_samples(run.samples_ms)
            record.e2e_throughput_per_s = config.batch_size / (record.e2e_latency_ms.median / 1e3)
            timing.update(
                e2e_timer=run.timer,
                e2e_iterations=len(run.samples_ms),
                e2e_elapsed_s=round(run.elapsed_s, 4),
                e2e_stop_reason=run.stop_reason,
            )
        record.timing = timing
        return record


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
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


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
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})
