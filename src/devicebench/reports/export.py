"""The report as Markdown, CSV (one row per configuration) and JSON (the run plus derived
figures): the same numbers as the HTML page, for documents, spreadsheets and scripts.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from devicebench.measure.memory import MemoryStats
from devicebench.reports.cost import PRICE_TABLE_DATE, Prices
from devicebench.reports.escape import csv_cell, md_cell, md_text
from devicebench.reports.summary import (
    as_dicts,
    cost_rows,
    crossovers,
    energy_rows,
    memory_rows,
    parity_text,
    training_rows,
    user_throughput,
    variant_text,
)
from devicebench.reports.tables import seed_rows, seed_table_markdown
from devicebench.results.records import InferenceRecord, RunInfo, TrainingRecord

__all__ = ["CSV_COLUMNS", "report_csv", "report_json", "report_markdown"]

CSV_COLUMNS = (
    "run_id", "model", "device", "device_name", "batch_size", "precision", "variant", "status",
    "threads", "median_ms", "ci95_low_ms", "ci95_high_ms", "p90_ms", "p99_ms", "n", "e2e_median_ms",
    "items_per_s", "speedup_vs_cpu", "speedup_ci95_low", "speedup_ci95_high", "rss_peak_mb",
    "device_allocated_peak_mb", "device_reserved_peak_mb", "energy_source", "energy_measured",
    "joules_per_item", "mean_power_w", "usd_per_hour", "price_source", "usd_per_million",
    "electricity_usd_per_million", "parity",
)


def _speedups(records: Sequence[InferenceRecord]) -> dict[str, tuple[float, float, float]]:
    rows, _ = seed_rows(records)
    out = {}
    for row in rows:
        for label, sp in row.speedups.items():
            rec = row.accelerators[label]
            out[rec.record_id] = (sp.ratio, sp.low, sp.high)
    return out


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else value


def report_csv(records: Sequence[InferenceRecord], prices: Prices | None = None) -> str:
    """One row per configuration, every figure of the report; empty cells where none applies."""
    prices = prices or Prices()
    speed = _speedups(records)
    costs = {(c.model, c.device, c.batch_size, c.precision): c for c in cost_rows(records, prices)}
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in records:
        lat = r.latency_ms
        e2e = r.e2e_latency_ms
        mem, e = r.memory or MemoryStats(), r.energy
        energy = [e.source, e.measured, e.joules_per_item, e.mean_power_w] if e is not None else [None] * 4
        cost = costs.get((r.model, r.device.label, r.batch_size, r.precision))
        sp = speed.get(r.record_id)
        row = [
            r.run_id, r.model, r.device.label, r.device.name, r.batch_size, r.precision, variant_text(r),
            r.status, r.threads or "", lat.median if lat else None, lat.ci95[0] if lat else None,
            lat.ci95[1] if lat else None, lat.p90 if lat else None, lat.p99 if lat else None,
            lat.n if lat else None, e2e.median if e2e else None, user_throughput(r),
            sp[0] if sp else None, sp[1] if sp else None, sp[2] if sp else None,
            mem.rss_peak_mb, mem.device_allocated_peak_mb, mem.device_reserved_peak_mb, *energy,
            cost.usd_per_hour if cost else None, cost.price_source if cost else None,
            cost.usd_per_million if cost else None, cost.electricity_usd_per_million if cost else None,
            parity_text(r),
        ]
        writer.writerow([csv_cell(_fmt(v)) if isinstance(v, str) else _fmt(v) for v in row])
    return buf.getvalue()


def report_json(run: RunInfo, records: Sequence[InferenceRecord], training: Sequence[TrainingRecord] = (),
                prices: Prices | None = None, *, tool_version: str = "") -> dict[str, Any]:
    """The run document (``run``, ``records``) plus a ``report`` section of derived figures."""
    from devicebench.results.jsonio import run_document

    prices = prices or Prices()
    doc = run_document(run, list(records), partial=run.status not in ("complete", "running"))
    speed = _speedups(records)
    doc["training"] = [t.to_dict() for t in training]
    doc["report"] = {
        "speedups": [
            {"record_id": rid, "ratio": v[0], "ci95": [v[1], v[2]]} for rid, v in speed.items()
        ],
        "crossovers": [dict(c.__dict__, text=c.text()) for c in crossovers(records)],
        "memory": as_dicts(memory_rows(records)),
        "energy": as_dicts(energy_rows(records)),
        "cost": as_dicts(cost_rows(records, prices)),
        "training": as_dicts(training_rows(training, prices)),
        "prices": prices.to_dict(),
        "generated_by": f"devicebench {tool_version}".strip(),
    }
    return doc


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(md_cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _n(value: float | None, fmt: str = "{:.3g}") -> str:
    if value is None:
        return "-"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):  # not a number after all: a cell, escaped by _md_table
        return str(value)


def report_markdown(run: RunInfo, records: Sequence[InferenceRecord], training: Sequence[TrainingRecord] = (),
                    prices: Prices | None = None) -> str:
    """The report's tables as Markdown (no figures)."""
    prices = prices or Prices()
    env = run.environment or (records[0].environment if records else {})
    cpu = (env.get("cpu") or {}).get("model", "?")
    gpus = ", ".join(a.get("name", "?") for a in env.get("accelerators", []) or []) or "none"
    out = [f"# devicebench report: run {md_text(run.run_id)}", "",
           md_text(f"{run.started_at}, {run.status}; CPU {cpu}; accelerators {gpus}; torch {env.get('torch', '?')}"), ""]
    if records:
        out += ["## Inference time: CPU against GPU", "", seed_table_markdown(list(records)), ""]
        cross = crossovers(records)
        if cross:
            out += ["Crossover: " + md_text("; ".join(f"{c.model} {c.precision}: {c.text()}" for c in cross)), ""]
        out += ["## Energy", "", _md_table(
            ["Model", "Device", "Batch", "Source", "J/inference", "Mean W above idle", "Note"],
            [[e.model, e.device, e.batch_size, e.source + ("" if e.measured else " (estimate)"),
              _n(e.joules_per_item, "{:.4g}"), _n(e.mean_power_w, "{:.1f}"), e.note] for e in energy_rows(records)]), ""]
        out += ["## Cost", "", f"Default prices are indicative cloud on-demand list prices of {PRICE_TABLE_DATE}.", "",
                _md_table(["Model", "Device", "Batch", "Items/s", "USD/h", "Price from", "USD per 1M", "Electricity per 1M"],
                          [[c.model, c.device, c.batch_size, _n(c.items_per_s, "{:,.1f}"), _n(c.usd_per_hour, "{:.4g}"),
                            c.price_source, _n(c.usd_per_million, "{:,.4g}"), _n(c.electricity_usd_per_million, "{:,.4g}")]
                           for c in cost_rows(records, prices)]), ""]
        out += ["## Memory", "", _md_table(
            ["Model", "Device", "Batch", "Peak RSS MiB", "GPU allocated MiB", "GPU reserved MiB"],
            [[m.model, m.device, m.batch_size, _n(m.rss_peak_mb, "{:,.0f}"), _n(m.device_allocated_peak_mb, "{:,.1f}"),
              _n(m.device_reserved_peak_mb, "{:,.1f}")] for m in memory_rows(records)]), ""]
        parity = [[r.model, r.device.label, r.batch_size, parity_text(r)] for r in records if parity_text(r)]
        if parity:
            out += ["## Parity", "", _md_table(["Model", "Device", "Batch", "Parity"], parity), ""]
    if training:
        out += ["## Training", "", _md_table(
            ["Model", "Device", "Epochs", "Median epoch s", "Time to target s", "Cost per epoch", "Cost to target",
             "J per epoch"],
            [[t.model, t.device, t.epochs, _n(t.median_epoch_s), _n(t.time_to_target_s),
              _n(t.usd_per_epoch, "${:.4g}"), _n(t.usd_to_target, "${:.4g}"),
              f"{_n(t.joules_per_epoch, '{:.4g}')} ({t.energy_source})"] for t in training_rows(training, prices)]), ""]
    return "\n".join(out)
