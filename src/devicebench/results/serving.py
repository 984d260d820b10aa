"""Records of ``serve`` (kind ``serving``) and ``pipeline`` (kind ``pipeline``) runs, and reading
them back from a JSON file or the store. See docs/serving.md and docs/results-schema.md."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devicebench.devices.discovery import DeviceRef
from devicebench.errors import ConfigError, UserError
from devicebench.results.parts import from_known
from devicebench.results.records import SCHEMA_VERSION, RunInfo, utc_now

if TYPE_CHECKING:
    from devicebench.measure.pipeline import PipelineConfig, PipelineOutcome
    from devicebench.measure.serving import ServeConfig, ServeOutcome

__all__ = ["PipelineRecord", "ServingRecord", "load_serving"]


def _device_from(data: Mapping[str, Any]) -> DeviceRef:
    dev = data.get("device")
    if not isinstance(dev, Mapping):
        raise TypeError("device must be an object")
    return from_known(DeviceRef, dev)


@dataclass
class ServingRecord:
    """One model served on one device in one scenario (``devicebench serve``).

    ``trials`` holds every trial of the server scenario's search (rate, verdict, latency
    percentiles from scheduled arrival, goodput, generator slip); ``max_rate`` is the highest
    rate per second that kept ``quantile`` under ``target_ms``; ``confirm`` is the trial at that
    rate (raw latencies kept), ``energy`` was read around it.
    """

    run_id: str
    model: str
    device: DeviceRef
    scenario: str
    status: str
    message: str = ""
    precision: str = "fp32"
    batch_size: int = 1  # the largest dynamic batch (--max-batch)
    max_delay_ms: float = 0.0
    target_ms: float = 0.0
    quantile: float = 0.99
    duration_s: float = 0.0
    seed: int = 0
    threads: int = 0
    cores: int = 0
    single_stream: dict[str, Any] | None = None
    capacity_per_s: float | None = None
    calibration: dict[str, Any] | None = None
    trials: list[dict[str, Any]] = field(default_factory=list)
    max_rate: float | None = None
    bracket: list[float | None] = field(default_factory=list)
    search_note: str = ""
    confirm: dict[str, Any] | None = None
    energy: dict[str, Any] | None = None
    offline: list[dict[str, Any]] = field(default_factory=list)
    concurrency: list[dict[str, Any]] = field(default_factory=list)
    generator_shares_cores: bool = False
    warnings: list[str] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    timestamp: str = field(default_factory=utc_now)
    record_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    kind: str = "serving"
    schema_version: int = SCHEMA_VERSION

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def headline_ms(self) -> float | None:
        """Single-stream median (indexed in the store)."""
        return self.single_stream.get("p50_ms") if self.single_stream else None

    @property
    def best_offline(self) -> dict[str, Any] | None:
        ok = [p for p in self.offline if p.get("status") == "ok" and p.get("items_per_s")]
        return max(ok, key=lambda p: p["items_per_s"]) if ok else None

    @property
    def joules_per_request(self) -> float | None:
        return self.energy.get("joules_per_item") if self.energy else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServingRecord:
        """Read a record (missing keys take defaults; unknown ones are ignored).

        Raises:
            TypeError, ValueError: not a serving record.
        """
        if not isinstance(data, Mapping):
            raise TypeError("a record must be an object")
        values = dict(data)
        values["device"] = _device_from(data)
        record = from_known(cls, values)
        for name in ("trials", "offline", "concurrency", "warnings", "bracket"):
            if not isinstance(getattr(record, name), list):
                raise TypeError(f"{name} must be a list")
        if any(not isinstance(t, Mapping) for t in record.trials + record.offline + record.concurrency):
            raise TypeError("trials, offline and concurrency hold objects")
        return record

    @classmethod
    def from_outcome(cls, run_id: str, config: ServeConfig, outcome: ServeOutcome) -> ServingRecord:
        spec = config.device
        s = config.settings
        fields = {k: v for k, v in asdict(outcome).items() if k not in ("device_name",)}
        return cls(run_id=run_id, model=config.model, device=DeviceRef(spec.type, spec.index, outcome.device_name),
                   scenario=config.scenario, precision=config.precision, batch_size=s.max_batch,
                   max_delay_ms=s.max_delay_ms, target_ms=s.target_ms, quantile=s.quantile,
                   duration_s=s.duration_s, seed=s.seed, **fields)

    @classmethod
    def failed(cls, run_id: str, config: ServeConfig, message: str) -> ServingRecord:
        spec = config.device
        return cls(run_id=run_id, model=config.model, device=DeviceRef(spec.type, spec.index, spec.torch_device),
                   scenario=config.scenario, status="crashed", message=message, batch_size=config.settings.max_batch,
                   target_ms=config.settings.target_ms, quantile=config.settings.quantile)


@dataclass
class PipelineRecord:
    """One model's images-to-answers pipeline (``devicebench pipeline``) on one model device:
    every split measured (decode on the CPU with N loader workers, or on the GPU), each stage
    timed apart, the bottleneck named."""

    run_id: str
    model: str
    device: DeviceRef
    status: str
    message: str = ""
    input_kind: str = "images"  # images | text
    source: str = ""  # the folder, or "synthetic"
    n_items: int = 0
    batch_size: int = 8
    precision: str = "fp32"
    splits: list[dict[str, Any]] = field(default_factory=list)
    model_only_per_s: float | None = None
    decode_errors: list[str] = field(default_factory=list)
    skipped_files: int = 0
    environment: dict[str, Any] = field(default_factory=dict)
    timestamp: str = field(default_factory=utc_now)
    record_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    kind: str = "pipeline"
    schema_version: int = SCHEMA_VERSION

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def headline_ms(self) -> float | None:
        best = self.best
        return 1e3 / best["items_per_s"] if best and best.get("items_per_s") else None

    @property
    def best(self) -> dict[str, Any] | None:
        ok = [s for s in self.splits if s.get("status") == "ok" and s.get("items_per_s")]
        return max(ok, key=lambda s: s["items_per_s"]) if ok else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PipelineRecord:
        if not isinstance(data, Mapping):
            raise TypeError("a record must be an object")
        values = dict(data)
        values["device"] = _device_from(data)
        record = from_known(cls, values)
        if not isinstance(record.splits, list) or any(not isinstance(s, Mapping) for s in record.splits):
            raise TypeError("splits must be a list of objects")
        return record

    @classmethod
    def from_outcome(cls, run_id: str, config: PipelineConfig, outcome: PipelineOutcome) -> PipelineRecord:
        spec = config.device
        fields = {k: v for k, v in asdict(outcome).items() if k != "device_name"}
        return cls(run_id=run_id, model=config.model, device=DeviceRef(spec.type, spec.index, outcome.device_name),
                   batch_size=config.batch_size, precision=config.precision, **fields)

    @classmethod
    def failed(cls, run_id: str, config: PipelineConfig, message: str) -> PipelineRecord:
        spec = config.device
        return cls(run_id=run_id, model=config.model, device=DeviceRef(spec.type, spec.index, spec.torch_device),
                   status="crashed", message=message, batch_size=config.batch_size, precision=config.precision)


def _parse(raw: Sequence[Any], cls: type[Any]) -> list[Any]:
    out = []
    for data in raw:
        try:
            out.append(cls.from_dict(data))
        except (KeyError, TypeError, ValueError):
            continue  # a damaged record is skipped, never a traceback
    return out


def load_serving(ref: str, db: str | Path | None) -> tuple[RunInfo, list[ServingRecord], list[PipelineRecord]]:
    """A run's serving and pipeline records, from a JSON file or the store.

    Raises:
        UserError: not a devicebench file, or no such run.
    """
    from devicebench.results.store import Store

    path = Path(ref)
    if path.suffix == ".json" or path.is_file():
        if not path.is_file():
            raise ConfigError(f"results file not found: {path}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UserError(f"{path} is not a devicebench JSON file: {exc}") from None
        if not isinstance(data, dict) or data.get("tool") != "devicebench" or not isinstance(data.get("records", []), list):
            raise UserError(f"{path} is not a devicebench results file")
        try:
            run = RunInfo.from_dict(data["run"])
        except (KeyError, TypeError) as exc:
            raise UserError(f"{path} is not a valid devicebench results file: {exc}") from None
        raw = [r for r in data.get("records", []) if isinstance(r, dict)]
        return (run, _parse([r for r in raw if r.get("kind") == "serving"], ServingRecord),
                _parse([r for r in raw if r.get("kind") == "pipeline"], PipelineRecord))
    with Store(db, readonly=True) as store:  # a read: nothing is created
        run = store.find_run(ref)
        return (run, _parse(store.raw_records(run.run_id, "serving"), ServingRecord),
                _parse(store.raw_records(run.run_id, "pipeline"), PipelineRecord))
