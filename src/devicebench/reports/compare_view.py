"""A comparison of two runs as a rich table or Markdown (pure functions; nothing prints)."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from devicebench.reports.tables import fmt_ms, new_table
from devicebench.results.compare import Comparison

__all__ = ["comparison_table", "comparison_markdown"]

_HEAD = ("Model", "Device", "Batch", "Precision", "A median", "B median", "B/A [95% CI]", "p", "Verdict")


def _p(value: float) -> str:
    return "<0.001" if value < 0.001 else f"{value:.2g}"


def _cells(result: Comparison) -> list[list[str]]:
    rows = []
    for r in result.rows:
        rows.append([
            r.model + (f" [{r.variant}]" if r.variant else ""), r.device, str(r.batch_size), r.precision,
            fmt_ms(r.median_a_ms), fmt_ms(r.median_b_ms), f"{r.ratio:.2f}x [{r.ci95[0]:.2f}-{r.ci95[1]:.2f}]",
            _p(r.p_value), r.verdict,
        ])
    return rows


def comparison_table(result: Comparison) -> Table:
    """One row per configuration in both runs (fits 80 columns): the medians A -> B, the ratio
    with its interval, p and the verdict; the precision only when it is not fp32 throughout."""
    show_precision = any(r.precision != "fp32" for r in result.rows)
    columns = [("Model", "name"), ("Device", "name"), ("Batch", "num")] + ([("Precision", "text")] if show_precision else [])
    columns += [("Median A -> B", "num"), ("B/A [95% CI]", "num"), ("p", "num"), ("Verdict", "text")]
    table = new_table(f"A = {result.run_a}  vs  B = {result.run_b}", columns,
                      caption="B/A = median B / median A of the time per batch (below 1: B is faster); "
                      "p = the significance test's p-value")
    for cells in _cells(result):
        row = cells[:3] + (cells[3:4] if show_precision else []) + [f"{cells[4]} -> {cells[5]}"] + cells[6:]
        table.add_row(*[escape(c) for c in row])
    return table


def comparison_markdown(result: Comparison) -> str:
    lines = [f"# Comparison: A = {result.run_a}, B = {result.run_b}", ""]
    for w in result.warnings:
        lines.append(f"> **Warning:** {w}")
    if result.warnings:
        lines.append("")
    lines += ["| " + " | ".join(_HEAD) + " |", "|" + "---|" * len(_HEAD)]
    lines += ["| " + " | ".join(c) + " |" for c in _cells(result)]
    lines += [""] + result.notes
    return "\n".join(lines) + "\n"
