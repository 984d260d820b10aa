"""Seed 000's table as HTML (for Jupyter) and as flat rows (for pandas); pure functions.

The cells and speedups come from :func:`devicebench.reports.tables.seed_grid`, so the
notebook, the terminal and the Markdown tables always agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from devicebench.reports.tables import seed_grid, seed_rows, warnings_for
from devicebench.results.records import InferenceRecord

__all__ = ["seed_table_html", "record_rows"]

_STYLE = (
    "<style>.devicebench-table td,.devicebench-table th{padding:2px 8px;text-align:right}"
    ".devicebench-table td:first-child,.devicebench-table th:first-child{text-align:left}</style>"
)


def seed_table_html(records: Sequence[InferenceRecord], title: str | None = None) -> str:
    """Seed 000's table (model | batch | CPU | each accelerator | speedup [95% CI]) as HTML.

    Failed configurations show their status; warnings (failures, noisy results) follow the
    table. Every text is HTML-escaped.
    """
    head, body = seed_grid(records)
    out = [_STYLE, f"<p><b>{escape(title or 'Inference time per batch (median)')}</b></p>",
           '<table class="devicebench-table"><thead><tr>']
    out += [f"<th>{escape(h)}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    out += ["<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>" for cells in body]
    out.append("</tbody></table>")
    warnings = warnings_for(records)
    if warnings:
        out.append("<ul>" + "".join(f"<li>warning: {escape(w)}</li>" for w in warnings) + "</ul>")
    return "".join(out)


def record_rows(records: Sequence[InferenceRecord]) -> list[dict[str, Any]]:
    """One flat dict per record (a DataFrame row): latency statistics in ms, throughput,
    the speedup over the CPU at the same model/batch/precision (with its 95% interval)."""
    rows, _ = seed_rows(records)
    speedups: dict[tuple[str, int, str, str], Any] = {}
    for row in rows:
        for label, sp in row.speedups.items():
            speedups[(row.model, row.batch_size, row.precision, label)] = sp
    out = []
    for r in records:
        lat, e2e = r.latency_ms, r.e2e_latency_ms
        sp = speedups.get((r.model, r.batch_size, r.precision, r.device.label))
        out.append({
            "model": r.model,
            "device": r.device.label,
            "device_name": r.device.name,
            "batch_size": r.batch_size,
            "precision": r.precision,
            "status": r.status,
            "median_ms": lat.median if lat else None,
            "ci95_low_ms": lat.ci95[0] if lat else None,
            "ci95_high_ms": lat.ci95[1] if lat else None,
            "p90_ms": lat.p90 if lat else None,
            "p99_ms": lat.p99 if lat else None,
            "n": lat.n if lat else 0,
            "e2e_median_ms": e2e.median if e2e else None,
            "throughput_per_s": r.throughput_per_s,
            "speedup_vs_cpu": sp.ratio if sp else None,
            "speedup_ci95_low": sp.low if sp else None,
            "speedup_ci95_high": sp.high if sp else None,
            "threads": r.threads,
            "message": r.message.splitlines()[0] if r.message else "",
            "record_id": r.record_id,
        })
    return out
