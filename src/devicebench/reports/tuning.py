"""Tables for tuning: every candidate with its parity, seed 000's naive and fair answers, the
crossover sweep. Pure functions: data in, rich tables out; nothing here prints."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table

from devicebench.reports.tables import fmt_ms

__all__ = ["candidates_table", "seed_answer_table", "crossover_table"]

_STATUS_STYLE = {"winner": "bold green", "ok": "", "rejected": "red", "failed": "red", "skipped": "dim"}


def _speedup(value: Any) -> str:
    if not value:
        return "-"
    if isinstance(value, dict):
        r, (lo, hi) = value["ratio"], value["ci95"]
    else:
        r, lo, hi = value
    return f"{r:.2f}x [{lo:.2f}-{hi:.2f}]"


def candidates_table(tuning: Any) -> Table:
    """One device's candidates: screening and full medians, parity, status and reason."""
    title = (f"Tuning {tuning.model} on {tuning.device} ({tuning.device_name}), batch {tuning.batch_size}: "
             f"winner {tuning.winner} [{tuning.source}]")
    caption = tuning.why
    if tuning.speedup_vs_naive:
        caption += f". Winner vs naive: {_speedup(tuning.speedup_vs_naive)}"
    if tuning.speedup_vs_ort:
        caption += f"; vs ONNX Runtime alone: {_speedup(tuning.speedup_vs_ort)} (above 1: the winner is faster)"
    table = Table(title=_escape(title), title_justify="left", caption=_escape(caption), caption_justify="left")
    for name, justify in [("Candidate", "left"), ("Screen median", "right"), ("Full median [95% CI]", "right"),
                          ("vs naive", "right"), ("Parity vs CPU fp32 eager", "left"), ("First call", "right"),
                          ("Status", "left")]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for c in tuning.candidates:
        parity = "-"
        if c.parity is not None:
            p = c.parity
            bits = [f"{p.numeric_class}: rel {p.max_rel_err:.1e}", f"cos {p.min_cosine:.5f}"]
            if p.top1_agreement is not None:
                bits.append(f"top-1 {p.top1_agreement:.0%}")
            if p.top1_ties:
                bits.append(f"{p.top1_ties} tie(s)")
            parity = ", ".join(bits)
        full = "-"
        if c.final_median_ms is not None and c.final_ci95:
            full = f"{fmt_ms(c.final_median_ms)} [{c.final_ci95[0]:.3g}-{c.final_ci95[1]:.3g}]"
        first = c.cold_start.first_inference_ms if c.cold_start is not None else None
        status = c.status + (f": {c.reason}" if c.reason else "")
        naive = c.variant == "eager" and c.precision == "fp32" and c.threads is None
        table.add_row(c.name + (" (naive)" if naive else ""), fmt_ms(c.screen_median_ms), full,
                      f"{c.vs_naive:.2f}x" if c.vs_naive else "-", parity,
                      fmt_ms(first) if first is not None else "-",
                      f"[{_STATUS_STYLE.get(c.status, '')}]{_escape(status)}[/]" if _STATUS_STYLE.get(c.status) else _escape(status))
    return table


def _escape(text: str) -> str:
    return text.replace("[", "\\[")


def seed_answer_table(answers: Sequence[Any]) -> Table:
    """Seed 000's answer: naive (eager / eager) and fair (best / best) speedups side by side."""
    table = Table(title="Seed 000, answered twice: naive (eager fp32 on both) and fair (best against best)",
                  title_justify="left")
    for name, justify in [("Model", "left"), ("Batch", "right"), ("CPU eager", "right"), ("CPU best", "right"),
                          ("GPU eager", "right"), ("GPU best", "right"), ("Naive speedup [95% CI]", "right"),
                          ("Fair speedup [95% CI]", "right")]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for a in answers:
        d = a.to_dict() if hasattr(a, "to_dict") else a
        gpu_cells = ([fmt_ms(d["gpu_naive_ms"]), f"{fmt_ms(d['gpu_best_ms'])} ({d['gpu_best']})"]
                     if d.get("accelerator") else ["no GPU found", "-"])
        table.add_row(d["model"], str(d["batch_size"]), fmt_ms(d["cpu_naive_ms"]),
                      f"{fmt_ms(d['cpu_best_ms'])} ({d['cpu_best']})", *gpu_cells,
                      _speedup(d.get("naive_speedup")), _speedup(d.get("fair_speedup")))
    return table


def crossover_table(crossover: dict[str, Any]) -> Table:
    """Throughput per device and batch size, copies apart, and where the GPU starts to win."""
    answers = "; ".join(v["text"] for v in crossover.get("crossover", {}).values())
    table = Table(title="Crossover: end-to-end throughput per batch size (each device's tuned winner)",
                  title_justify="left", caption=_escape(answers), caption_justify="left")
    for name in ("Device", "Configuration", "Batch", "Latency", "Compute", "H2D copy", "D2H copy", "Items/s", "Status"):
        table.add_column(name, justify="left" if name in ("Device", "Configuration", "Status") else "right")
    for dev, rows in crossover.get("curves", {}).items():
        for r in rows:
            table.add_row(dev, r.get("configuration", ""), str(r["batch_size"]), fmt_ms(r.get("latency_ms")),
                          fmt_ms(r.get("compute_ms")), fmt_ms(r.get("h2d_ms")) if dev != "cpu" else "none",
                          fmt_ms(r.get("d2h_ms")) if dev != "cpu" else "none",
                          f"{r['items_per_s']:,.1f}" if r.get("items_per_s") else "-", r.get("status", ""))
    return table
