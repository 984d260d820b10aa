"""A comparison of two runs as a rich table or Markdown (pure functions; nothing prints)."""

from __future__ import annotations

from rich.table import Table

from devicebench.results.compare import Comparison

__all__ = ["comparison_table", "comparison_markdown"]

_HEAD = ("Model", "Device", "Batch", "Precision", "A median ms", "B median ms", "B/A [95% CI]", "p", "Verdict")


def _cells(result: Comparison) -> list[list[str]]:
    rows = []
    for r in result.rows:
        rows.append([
            r.model + (f" [{r.variant}]" if r.variant else ""), r.device, str(r.batch_size), r.precision,
            f"{r.median_a_ms:.4g}", f"{r.median_b_ms:.4g}", f"{r.ratio:.3f}x [{r.ci95[0]:.3f}-{r.ci95[1]:.3f}]",
            f"{r.p_value:.2g}", r.verdict,
        ])
    return rows


def comparison_table(result: Comparison) -> Table:
    table = Table(title=f"A = {result.run_a}  vs  B = {result.run_b}", title_justify="left")
    for i, name in enumerate(_HEAD):
        table.add_column(name, justify="right" if 2 <= i <= 7 else "left")
    for cells in _cells(result):
        table.add_row(*cells)
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
