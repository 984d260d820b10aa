"""The numbers a report shows, computed once as plain rows: memory, energy, cost, crossover,
training. Rendering (HTML, Markdown, CSV, JSON) lives beside this; nothing here prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from devicebench.reports.cost import Price, Prices, cost_of_seconds, cost_per_million, electricity_per_million
from devicebench.measure.energy import TDP_TABLE_DATE, lookup_tdp
from devicebench.measure.memory import MemoryStats
from devicebench.results.loading import training_records  # moved to results/; kept importable here
from devicebench.results.records import EpochRow, InferenceRecord, TrainingRecord

__all__ = [
    "config_label",
    "user_throughput",
    "MemoryRow",
    "EnergyRow",
    "CostRow",
    "Crossover",
    "TrainingRow",
    "memory_rows",
    "energy_rows",
    "cost_rows",
    "crossovers",
    "training_records",
    "training_rows",
    "variant_text",
    "parity_text",
    "CopyRow",
    "copy_rows",
]


def variant_text(record: Any) -> str:
    """The tuning variant of a record (added by the tuning issue), or ``""``."""
    variant = getattr(record, "variant", None)
    if not variant or variant == "eager":  # plain PyTorch, the default: nothing to name
        return ""
    if isinstance(variant, dict):
        return ", ".join(f"{k}={v}" for k, v in variant.items() if v not in (None, "", False))
    return str(variant)


def parity_text(record: InferenceRecord) -> str:
    """The parity check of a record against the CPU fp32 reference (its scalar figures as
    ``name=value``), or ``""``."""
    if record.parity is None:
        return ""
    parts = []
    for k, v in record.parity.to_dict().items():
        if isinstance(v, float):
            parts.append(f"{k}={v:.3g}")
        elif isinstance(v, (str, int, bool)) or v is None:
            parts.append(f"{k}={v}")
    return ", ".join(parts)


def config_label(r: InferenceRecord) -> str:
    variant = variant_text(r)
    return f"{r.model} b{r.batch_size} {r.precision}" + (f" [{variant}]" if variant else "")


def user_throughput(r: InferenceRecord) -> float | None:
    """Items per second a user gets: end to end on an accelerator, compute on the CPU."""
    return r.e2e_throughput_per_s or r.throughput_per_s


def _cores(r: InferenceRecord) -> int | None:
    if r.threads:
        return r.threads
    cpu = (r.environment or {}).get("cpu", {})
    return cpu.get("affinity_cores") or cpu.get("logical_cores")


@dataclass
class MemoryRow:
    model: str
    device: str
    batch_size: int
    precision: str
    rss_peak_mb: float | None
    rss_model_mb: float | None
    device_allocated_peak_mb: float | None
    device_reserved_peak_mb: float | None


def memory_rows(records: Sequence[InferenceRecord]) -> list[MemoryRow]:
    rows = []
    for r in records:
        mem = r.memory or MemoryStats()
        peak, base = mem.rss_peak_mb, mem.rss_baseline_mb
        rows.append(MemoryRow(
            r.model, r.device.label, r.batch_size, r.precision, peak,
            round(peak - base, 1) if peak is not None and base is not None else None,
            mem.device_allocated_peak_mb, mem.device_reserved_peak_mb,
        ))
    return rows


@dataclass
class EnergyRow:
    model: str
    device: str
    batch_size: int
    precision: str
    source: str
    measured: bool
    joules_per_item: float | None
    mean_power_w: float | None
    idle_power_w: float | None
    note: str


def energy_rows(records: Sequence[InferenceRecord]) -> list[EnergyRow]:
    """One row per record that carries an ``energy`` field (older records have none)."""
    rows = []
    for r in records:
        e = r.energy
        if e is None:
            continue
        notes = [x.note for x in e.readings if x.note] + e.notes
        rows.append(EnergyRow(
            r.model, r.device.label, r.batch_size, r.precision, e.source, e.measured,
            e.joules_per_item, e.mean_power_w, e.idle_power_w, "; ".join(notes),
        ))
    return rows


@dataclass
class CostRow:
    model: str
    device: str
    batch_size: int
    precision: str
    items_per_s: float | None
    usd_per_hour: float | None
    price_source: str
    price_basis: str
    usd_per_million: float | None
    electricity_usd_per_million: float | None
    energy_source: str


def cost_rows(records: Sequence[InferenceRecord], prices: Prices) -> list[CostRow]:
    """Cost per million inferences (items), the device fully used at the measured throughput."""
    rows = []
    for r in records:
        if not r.ok:
            continue
        tput = user_throughput(r)
        price: Price | None = prices.for_device(r.device.label, r.device.type, r.device.name, _cores(r))
        usd_m = cost_per_million(tput, price.usd_per_hour) if price and tput else None
        e = r.energy
        elec = electricity_per_million(e.joules_per_item, prices.electricity_usd_per_kwh) if e is not None else None
        rows.append(CostRow(
            r.model, r.device.label, r.batch_size, r.precision, tput,
            price.usd_per_hour if price else None, price.source if price else "none",
            price.basis if price else "no price known: pass --price", usd_m, elec,
            e.source if e is not None else "none",
        ))
    return rows


@dataclass
class Crossover:
    """Where an accelerator's throughput overtakes the CPU's, for one model and precision.

    ``batch`` is the first measured batch size at which the accelerator is faster (``None``:
    never within the batch sizes measured); ``previous`` the measured batch just below it.
    """

    model: str
    precision: str
    accelerator: str
    batch: int | None
    previous: int | None
    batches: list[int] = field(default_factory=list)

    def text(self) -> str:
        if self.batch is None:
            return f"{self.accelerator} never beats the CPU up to batch {max(self.batches)}"
        if self.previous is None:
            return f"{self.accelerator} beats the CPU from batch {self.batch} (the smallest measured)"
        return f"{self.accelerator} overtakes the CPU between batch {self.previous} and {self.batch}"


def crossovers(records: Sequence[InferenceRecord]) -> list[Crossover]:
    """The CPU/accelerator crossover batch size per model, precision and accelerator."""
    table: dict[tuple[str, str], dict[str, dict[int, float]]] = {}
    for r in records:
        tput = user_throughput(r)
        if not r.ok or not tput or variant_text(r):
            continue
        table.setdefault((r.model, r.precision), {}).setdefault(r.device.label, {})[r.batch_size] = tput
    out = []
    for (model, precision), devices in table.items():
        cpu = devices.get("cpu")
        if not cpu:
            continue
        for label, acc in devices.items():
            if label == "cpu":
                continue
            batches = sorted(set(cpu) & set(acc))
            if not batches:
                continue
            found = next((i for i, b in enumerate(batches) if acc[b] > cpu[b]), None)
            out.append(Crossover(
                model, precision, label,
                batches[found] if found is not None else None,
                batches[found - 1] if found else None,
                batches,
            ))
    return out


@dataclass
class TrainingRow:
    model: str
    device: str
    device_name: str
    status: str
    epochs: int
    final_train_loss: float | None
    final_val_top1: float | None
    median_epoch_s: float | None
    samples_per_s: float | None
    target_acc: float | None
    time_to_target_s: float | None
    total_s: float | None
    usd_per_hour: float | None
    price_source: str
    usd_per_epoch: float | None
    usd_to_target: float | None
    joules_per_epoch: float | None
    energy_source: str


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[len(s) // 2] if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2


def training_rows(records: Sequence[TrainingRecord], prices: Prices) -> list[TrainingRow]:
    """Time, cost and energy per epoch and to the target accuracy, per training record.

    Energy per epoch comes from the record's own ``energy`` (when the training stage measured
    it) or else is an ESTIMATE from the TDP table, labelled ``estimate-tdp``.
    """
    rows = []
    for t in records:
        epochs: list[EpochRow] = t.epochs
        med = _median([e.epoch_s for e in epochs])
        last = epochs[-1] if epochs else None
        cores = t.settings.get("threads") if isinstance(t.settings, dict) else None
        price = prices.for_device(t.device.label, t.device.type, t.device.name, cores)
        energy = getattr(t, "energy", None) or (t.settings.get("energy") if isinstance(t.settings, dict) else None)
        if isinstance(energy, dict) and energy.get("joules_per_epoch") is not None:
            jpe, esrc = float(energy["joules_per_epoch"]), str(energy.get("source", "?"))
        else:
            watts = lookup_tdp(t.device.name)
            if watts is None and t.device.type == "cpu":
                from devicebench.measure.energy import CPU_WATTS_PER_CORE

                watts = CPU_WATTS_PER_CORE * int(cores or (t.environment.get("cpu", {}) or {}).get("affinity_cores") or 1)
            jpe = watts * med if watts is not None and med is not None else None
            esrc = f"estimate-tdp ({TDP_TABLE_DATE})" if jpe is not None else "none"
        rows.append(TrainingRow(
            t.model, t.device.label, t.device.name, t.status, len(epochs),
            last.train_loss if last else None, last.val_top1 if last else None, med,
            _median([e.samples_per_s for e in epochs]), t.target_acc, t.time_to_target_s, t.total_s,
            price.usd_per_hour if price else None, price.source if price else "none",
            cost_of_seconds(med, price.usd_per_hour) if price and med is not None else None,
            cost_of_seconds(t.time_to_target_s, price.usd_per_hour)
            if price and t.time_to_target_s is not None else None,
            jpe, esrc,
        ))
    return rows


def as_dicts(rows: Sequence[Any]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]


@dataclass
class CopyRow:
    """One device's host<->device copies: the host buffers its end-to-end timing used and the
    copy speed measured on it (``copies`` says "not applicable" on the CPU)."""

    device: str
    name: str
    host_memory: str
    copies: str


def copy_rows(records: Sequence[InferenceRecord]) -> list[CopyRow]:
    """One row per device in the records, in order of first appearance."""
    from devicebench.devices.transfer import NOT_APPLICABLE

    rows: dict[str, CopyRow] = {}
    for r in records:
        label = r.device.label
        if r.device.type == "cpu":
            rows.setdefault(label, CopyRow(label, r.device.name, "-", NOT_APPLICABLE))
            continue
        row = rows.setdefault(label, CopyRow(label, r.device.name, "", "not measured (older record)"))
        kinds = {k for k in row.host_memory.split(" and ") if k}
        kinds.add(r.host_memory or "pageable")  # records before issue 13 were all pageable
        row.host_memory = " and ".join(sorted(kinds))
        probe = r.transfer_probe
        if probe is not None and row.copies.startswith("not measured"):
            row.copies = probe.text()
    return list(rows.values())
