"""LLM records: one generation configuration measured, raw per-token samples kept.

An :class:`LlmRecord` is stored like any record (``kind = "llm"``; the store's ``records``
table already holds a kind and a JSON document, so no migration was needed) and written in a
run's JSON file beside inference records. Every figure is derived from the raw samples it
keeps (``samples``), so any statistic can be recomputed; the derived ones are written too
for readers that do not want to.

Throughput figures (tokens per second):

* prefill: ``batch x prompt / prefill time`` per repetition;
* decode: ``batch x (gen - 1) / decode time`` per repetition (the first new token comes from
  the prefill; its time is the TTFT).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from devicebench.devices.bandwidth import BandwidthProbe
from devicebench.devices.discovery import DeviceRef
from devicebench.measure.llm import LlmCold, LlmConfig, LlmOutcome, LlmParity, LlmSizes
from devicebench.measure.memory import MemoryStats
from devicebench.measure.stats import Summary, ratio_ci
from devicebench.results.parts import EnergyUse, from_known
from devicebench.results.records import SCHEMA_VERSION, RunInfo, utc_now

__all__ = ["LlmRecord", "LlmSamples", "compare_llm_runs", "llm_records", "load_llm_run", "speedup"]


@dataclass
class LlmSamples:
    """The raw samples of a record, nanoseconds, one entry per timed repetition (``steps_ns``:
    one list of decode-step times per repetition)."""

    prefill_ns: list[int] = field(default_factory=list)
    ttft_ns: list[int] = field(default_factory=list)
    steps_ns: list[list[int]] = field(default_factory=list)

    @property
    def decode_ns(self) -> list[int]:
        return [sum(s) for s in self.steps_ns]

    @property
    def itl_ms(self) -> list[float]:
        """Every inter-token latency, ms, all repetitions."""
        return [ns / 1e6 for steps in self.steps_ns for ns in steps]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LlmSamples:
        return from_known(cls, data)


def _summary(values: Sequence[float], unit: str) -> Summary | None:
    return Summary.from_samples(values, unit) if values else None


@dataclass
class LlmRecord:
    """One LLM configuration's results (or failure). See docs/llm.md and docs/results-schema.md."""

    run_id: str
    model: str
    device: DeviceRef
    n_prompt: int
    n_gen: int
    batch_size: int
    precision: str
    variant: str
    status: str
    message: str = ""
    weights: str = "random"
    parameters: int = 0
    shape: dict[str, Any] = field(default_factory=dict)
    threads: int = 0
    repetitions: int = 0
    timer: str = "perf_counter"
    samples: LlmSamples = field(default_factory=LlmSamples)
    # Derived from the samples (written for readers; recomputed from the samples on load).
    prefill_tps: Summary | None = None
    decode_tps: Summary | None = None
    ttft_ms: Summary | None = None
    tpot_ms: Summary | None = None
    itl_ms: Summary | None = None
    #: Bytes and FLOPs, and what they make of the timings.
    sizes: LlmSizes | None = None
    bandwidth: BandwidthProbe | None = None
    decode_gbps: float | None = None
    decode_bandwidth_share: float | None = None
    prefill_tflops: float | None = None
    cold_start: LlmCold | None = None
    memory: MemoryStats | None = None
    energy: EnergyUse | None = None
    #: Joules per generated token (prefill included): energy of the timed repetitions over their tokens.
    joules_per_token: float | None = None
    parity: LlmParity | None = None
    #: ``reference`` (one of the asked configurations, also the CPU fp32 reference),
    #: ``parity-reference`` (added only to check the others: one repetition), or empty.
    role: str = ""
    #: The device's fastest decode among the variants whose answer passed (``--tune``).
    best: bool = False
    tokens: list[int] = field(default_factory=list)
    model_file: dict[str, Any] | None = None
    environment: dict[str, Any] = field(default_factory=dict)
    timestamp: str = field(default_factory=utc_now)
    record_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    kind: str = "llm"
    schema_version: int = SCHEMA_VERSION

    # -- what the store and reports need -------------------------------------------------
    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def headline_ms(self) -> float | None:
        """Median time per output token, ms (indexed in the store)."""
        return self.tpot_ms.median if self.tpot_ms else None

    @property
    def label(self) -> str:
        return f"{self.model} {self.device.label} pp{self.n_prompt} tg{self.n_gen} b{self.batch_size} {self.precision} {self.variant}"

    # -- derived figures ------------------------------------------------------------------
    def derive(self) -> LlmRecord:
        """(Re)compute every derived figure from the raw samples and sizes."""
        s = self.samples
        tokens_pp = self.batch_size * self.n_prompt
        tokens_tg = self.batch_size * (self.n_gen - 1)
        self.prefill_tps = _summary([tokens_pp * 1e9 / ns for ns in s.prefill_ns if ns > 0], "tok/s")
        self.decode_tps = _summary([tokens_tg * 1e9 / ns for ns in s.decode_ns if ns > 0], "tok/s")
        self.ttft_ms = _summary([ns / 1e6 for ns in s.ttft_ns], "ms")
        self.tpot_ms = _summary([ns / 1e6 / max(1, self.n_gen - 1) for ns in s.decode_ns], "ms")
        self.itl_ms = _summary(s.itl_ms, "ms")
        self.decode_gbps = self.decode_bandwidth_share = self.prefill_tflops = None
        if self.sizes is not None and self.decode_tps is not None:
            steps_per_s = self.decode_tps.median / self.batch_size
            self.decode_gbps = self.sizes.decode_bytes_per_step * steps_per_s / 1e9
            if self.bandwidth is not None and self.bandwidth.peak_gbps > 0:
                self.decode_bandwidth_share = self.decode_gbps / self.bandwidth.peak_gbps
        if self.sizes is not None and self.prefill_tps is not None and self.sizes.prefill_flops:
            prefill_s = tokens_pp / self.prefill_tps.median
            self.prefill_tflops = self.sizes.prefill_flops / prefill_s / 1e12
        self.joules_per_token = self.energy.joules_per_item if self.energy is not None and self.energy.joules_per_item else None
        return self

    # -- JSON -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in _PARTS:
            part = getattr(self, key)
            data[key] = part.to_dict() if part is not None else None
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LlmRecord:
        """Read a record (unknown keys ignored, missing ones defaulted); derived figures are
        recomputed from the samples."""
        data = dict(data)
        data["device"] = DeviceRef(**data["device"])
        for key, parse in _PARTS.items():
            value = data.pop(key, None)
            if value is not None:
                data[key] = parse(value)
        record = from_known(cls, data)
        return record.derive()

    @classmethod
    def from_outcome(cls, run_id: str, config: LlmConfig, outcome: LlmOutcome, *, role: str = "") -> LlmRecord:
        spec = config.device
        reps = outcome.repetitions
        record = cls(
            run_id=run_id, model=config.model.name, device=DeviceRef(spec.type, spec.index, outcome.device_name),
            n_prompt=config.prompt, n_gen=config.gen, batch_size=config.batch, precision=config.precision,
            variant=config.variant, status=outcome.status, message=outcome.message, weights=outcome.weights,
            parameters=outcome.parameters, shape=outcome.shape.to_dict() if outcome.shape else {},
            threads=outcome.threads, repetitions=len(reps), timer=outcome.timer,
            samples=LlmSamples([r.prefill_ns for r in reps], [r.ttft_ns for r in reps], [list(r.step_ns) for r in reps]),
            sizes=outcome.sizes, bandwidth=outcome.bandwidth, cold_start=outcome.cold, memory=outcome.memory,
            energy=EnergyUse.from_dict(outcome.energy) if outcome.energy else None,
            parity=outcome.parity, role=role, tokens=list(outcome.tokens), model_file=outcome.model_file,
            environment=outcome.environment.to_dict() if outcome.environment else {},
        )
        return record.derive()

    @classmethod
    def failed(cls, run_id: str, config: LlmConfig, error: str, detail: str, *, role: str = "") -> LlmRecord:
        """A configuration whose worker died or failed before answering."""
        spec = config.device
        return cls(run_id=run_id, model=config.model.name, device=DeviceRef(spec.type, spec.index, spec.torch_device),
                   n_prompt=config.prompt, n_gen=config.gen, batch_size=config.batch, precision=config.precision,
                   variant=config.variant, status="crashed", message=f"{error}\n{detail[-1500:]}".strip(),
                   weights=config.model.weights, role=role)


def _energy(value: Mapping[str, Any]) -> EnergyUse:
    return EnergyUse.from_dict(value)


_PARTS: dict[str, Any] = {
    "samples": LlmSamples.from_dict,
    "prefill_tps": Summary.from_dict,
    "decode_tps": Summary.from_dict,
    "ttft_ms": Summary.from_dict,
    "tpot_ms": Summary.from_dict,
    "itl_ms": Summary.from_dict,
    "sizes": lambda d: from_known(LlmSizes, d),
    "bandwidth": BandwidthProbe.from_dict,
    "cold_start": lambda d: from_known(LlmCold, d),
    "memory": lambda d: from_known(MemoryStats, d),
    "energy": _energy,
    "parity": lambda d: from_known(LlmParity, d),
}


def llm_records(raw: Sequence[Mapping[str, Any]]) -> list[LlmRecord]:
    """LlmRecords from JSON objects (others skipped)."""
    out = []
    for data in raw:
        if not isinstance(data, Mapping) or data.get("kind") != "llm":
            continue
        try:
            record = LlmRecord.from_dict(data)
        except (KeyError, TypeError, ValueError) as exc:
            from devicebench.errors import UserError

            raise UserError(f"an LLM record is not valid: {exc}") from None
        out.append(record)
    return out


def load_llm_run(ref: str, db: str | Path | None) -> tuple[RunInfo, list[LlmRecord]]:
    """A run's LLM records, from a JSON file (``--json`` of ``devicebench llm``) or the store.

    Raises:
        UserError: a missing or invalid file, a run not in the store, an unreadable database.
    """
    from devicebench.errors import ConfigError, UserError
    from devicebench.results.store import Store

    path = Path(ref)
    if path.suffix == ".json" or path.is_file():
        if not path.is_file():
            raise ConfigError(f"results file not found: {path}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UserError(f"{path} is not a devicebench JSON file: {exc}") from None
        if not isinstance(data, dict) or data.get("tool") != "devicebench" or not isinstance(data.get("run"), dict):
            raise UserError(f"{path} is not a devicebench results file")
        try:
            run = RunInfo.from_dict(data["run"])
        except TypeError as exc:
            raise UserError(f"{path} is not a valid devicebench results file: {exc}") from None
        return run, llm_records(data.get("records") or [])
    with Store(db, readonly=True) as store:  # a read: nothing is created
        run = store.find_run(ref)
        return run, llm_records(store.raw_records(run.run_id, "llm"))


def speedup(cpu: LlmRecord, gpu: LlmRecord, phase: str) -> tuple[float, float, float] | None:
    """GPU over CPU tokens/s (median ratio, 95% bootstrap interval) for ``prefill`` or
    ``decode``, from the per-repetition samples; ``None`` when a side has none."""
    key = "prefill_tps" if phase == "prefill" else "decode_tps"
    a, b = getattr(cpu, key), getattr(gpu, key)
    if a is None or b is None:
        return None
    samples = {r.record_id: _tps_samples(r, phase) for r in (cpu, gpu)}
    return ratio_ci(samples[gpu.record_id], samples[cpu.record_id])


def _tps_samples(record: LlmRecord, phase: str) -> list[float]:
    if phase == "prefill":
        return [record.batch_size * record.n_prompt * 1e9 / ns for ns in record.samples.prefill_ns if ns > 0]
    return [record.batch_size * (record.n_gen - 1) * 1e9 / ns for ns in record.samples.decode_ns if ns > 0]


def compare_llm_runs(run_a: RunInfo, records_a: Sequence[LlmRecord], run_b: RunInfo,
                     records_b: Sequence[LlmRecord], *, alpha: float = 0.05, method: str = "auto") -> Any:
    """Compare two LLM runs: per configuration, the prefill time (per repetition) and the
    inter-token latency (every decode step), B over A, with the same test and interval as
    inference runs (:func:`devicebench.results.compare.compare_samples`).

    Returns:
        a :class:`~devicebench.results.compare.Comparison` (rows' ``variant`` says the phase).
    """
    from devicebench.results.compare import Comparison, ComparisonRow, compare_samples, environment_differences

    result = Comparison(run_a.run_id, run_b.run_id, alpha=alpha)

    def key(r: LlmRecord) -> tuple[Any, ...]:
        return (r.model, r.device.label, r.n_prompt, r.n_gen, r.batch_size, r.precision, r.variant)

    def name(k: tuple[Any, ...]) -> str:
        model, device, pp, tg, batch, precision, variant = k
        return f"{model} {device} pp{pp} tg{tg} b{batch} {precision} {variant}"

    a = {key(r): r for r in records_a if r.ok}
    b = {key(r): r for r in records_b if r.ok}
    env_a = run_a.environment or (records_a[0].environment if records_a else {})
    env_b = run_b.environment or (records_b[0].environment if records_b else {})
    result.environment_differences = environment_differences(
        env_a, env_b, [r.threads for r in records_a if r.device.type == "cpu"],
        [r.threads for r in records_b if r.device.type == "cpu"])
    if result.environment_differences:
        result.warnings.append("unlike environments: the difference may come from the machines or software, "
                               "not only from what you changed: " + "; ".join(result.environment_differences))
    for k, ra in a.items():
        rb = b.get(k)
        if rb is None:
            result.only_a.append(name(k))
            continue
        for phase, sa, sb in (("prefill", [n / 1e6 for n in ra.samples.prefill_ns], [n / 1e6 for n in rb.samples.prefill_ns]),
                              ("decode", ra.samples.itl_ms, rb.samples.itl_ms)):
            if not sa or not sb:
                continue
            ratio, ci, p, how, sig, verdict = compare_samples(sa, sb, alpha=alpha, method=method)
            result.method = how
            result.rows.append(ComparisonRow(
                ra.model, ra.device.label, ra.batch_size, ra.precision, f"{ra.variant} pp{ra.n_prompt} tg{ra.n_gen} {phase}",
                float(np.median(sa)), float(np.median(sb)), ratio, ci, p, how, sig, verdict, len(sa), len(sb)))
    result.only_b = [name(k) for k in b if k not in a]
    if not result.rows:
        result.notes.append("no LLM configuration was measured in both runs: nothing to compare")
    if result.only_a:
        result.notes.append(f"only in A ({run_a.run_id}): " + ", ".join(result.only_a))
    if result.only_b:
        result.notes.append(f"only in B ({run_b.run_id}): " + ", ".join(result.only_b))
    if result.rows:
        result.notes.append("LLM rows: prefill = time of each repetition's prefill, decode = every inter-token latency; "
                            f"ratio = median B / median A of the time (below 1: B is faster); 95% bootstrap interval; "
                            f"{result.method}; significant when p < {alpha:g} and the interval excludes 1.")
    return result
