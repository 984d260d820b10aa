"""Tables for tuning: every candidate with its parity, the naive and fair answers to the
question, the crossover sweep. Pure functions: data in, rich tables out; nothing here prints.
Each fits 80 columns; ``wide=True`` adds every figure (screening median, first call, cosine)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table

from devicebench.reports.tables import fmt_ci_ms, fmt_ms, new_table

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


def candidates_table(tuning: Any, *, wide: bool = False) -> Table:
    """One device's candidates: full median (or the screening one), speed against the naive,
    parity, status and reason. ``wide``: the screening median, first call and cosine apart."""
    title = (f"Tuning {tuning.model} on {tuning.device} ({tuning.device_name}), batch {tuning.batch_size}: "
             f"winner {tuning.winner} [{tuning.source}]")
    caption = tuning.why
    if tuning.speedup_vs_naive:
        caption += f". Winner vs naive: {_speedup(tuning.speedup_vs_naive)}"
    if tuning.speedup_vs_ort:
        caption += f"; vs ONNX Runtime alone: {_speedup(tuning.speedup_vs_ort)} (above 1: the winner is faster)"
    caption += (". Median: of the full measurement, else (screen) of the short screening one; "
                "vs naive = naive median / candidate median; parity: largest relative error against CPU fp32 eager")
    columns = [("Candidate", "name")] + ([("Screen median", "num")] if wide else []) + [
        ("Median [95% CI]", "num"), ("vs naive", "num"), ("Parity vs CPU fp32 eager", "text")]
    columns += ([("First call", "num")] if wide else []) + [("Status", "text")]
    table = new_table(_escape(title), columns, caption=_escape(caption.lstrip(". ")))
    for c in tuning.candidates:
        parity = "-"
        if c.parity is not None:
            p = c.parity
            bits = [f"{p.numeric_class}: rel {p.max_rel_err:.1e}"]
            if wide:
                bits.append(f"cos {p.min_cosine:.5f}")
            if p.top1_agreement is not None:
                bits.append(f"top-1 {p.top1_agreement:.0%}")
            if p.top1_ties:
                bits.append(f"{p.top1_ties} tie(s)")
            parity = ", ".join(bits)
        if c.final_median_ms is not None and c.final_ci95:
            median = fmt_ci_ms(c.final_median_ms, *c.final_ci95)
        else:
            median = f"{fmt_ms(c.screen_median_ms)} (screen)" if c.screen_median_ms is not None else "-"
        first = c.cold_start.first_inference_ms if c.cold_start is not None else None
        status = c.status + (f": {c.reason}" if c.reason else "")
        naive = c.variant == "eager" and c.precision == "fp32" and c.threads is None
        style = _STATUS_STYLE.get(c.status)
        cells = [c.name + (" (naive)" if naive else "")]
        if wide:
            cells.append(fmt_ms(c.screen_median_ms))
        cells += [median, f"{c.vs_naive:.2f}x" if c.vs_naive else "-", parity]
        if wide:
            cells.append(fmt_ms(first) if first is not None else "-")
        cells.append(f"[{style}]{_escape(status)}[/]" if style else _escape(status))
        table.add_row(*cells)
    return table


def _escape(text: str) -> str:
    return text.replace("[", "\\[")


def _speedup_short(value: Any) -> str:
    text = _speedup(value)
    if text == "-":
        return text
    r = value["ratio"] if isinstance(value, dict) else value[0]
    if r >= 10:  # three significant figures are enough: 13.9x [13.1-14.5]
        lo, hi = value["ci95"] if isinstance(value, dict) else value[1:]
        return f"{r:.1f}x [{lo:.1f}-{hi:.1f}]"
    return text


def seed_answer_table(answers: Sequence[Any], *, wide: bool = False) -> Table:
    """The question answered twice: naive (eager fp32 on both) and fair (best against best)
    speedups side by side, each device's best configuration named; ``wide`` adds both eager
    medians."""
    columns = [("Model", "name"), ("Batch", "num")] + ([("CPU eager", "num")] if wide else []) + [("CPU best", "text")]
    columns += ([("GPU eager", "num")] if wide else []) + [("GPU best", "text"), ("Naive speedup [95% CI]", "num"),
                                                          ("Fair speedup [95% CI]", "num")]
    table = new_table("The answer twice: naive (eager fp32 on both) and fair (each device's best)", columns,
                      caption="speedup = CPU median / GPU median; naive: eager fp32 on both; fair: each device's "
                      "fastest configuration that passed the parity check")
    for a in answers:
        d = a.to_dict() if hasattr(a, "to_dict") else a
        cells = [d["model"], str(d["batch_size"])] + ([fmt_ms(d["cpu_naive_ms"])] if wide else [])
        cells.append(f"{fmt_ms(d['cpu_best_ms'])} ({d['cpu_best']})")
        if d.get("accelerator"):
            cells += ([fmt_ms(d["gpu_naive_ms"])] if wide else []) + [f"{fmt_ms(d['gpu_best_ms'])} ({d['gpu_best']})"]
        else:
            cells += (["no GPU found"] if wide else []) + ["no GPU found" if not wide else "-"]
        table.add_row(*cells, _speedup_short(d.get("naive_speedup")), _speedup_short(d.get("fair_speedup")))
    return table


def crossover_table(crossover: dict[str, Any]) -> Table:
    """Throughput per device and batch size, copies apart, and where the GPU starts to win."""
    answers = "; ".join(v["text"] for v in crossover.get("crossover", {}).values())
    table = new_table("Crossover: end-to-end throughput per batch size (each device's tuned winner)", [
        ("Device", "name"), ("Configuration", "text"), ("Batch", "num"), ("Latency", "num"),
        ("Compute + H2D + D2H", "num"), ("Items/s", "num"), ("Status", "text")],
        caption=_escape(answers + ("; " if answers else "") + "H2D / D2H = copies host to device / device to host"))
    for dev, rows in crossover.get("curves", {}).items():
        for r in rows:
            parts = fmt_ms(r.get("compute_ms"))
            if dev != "cpu":
                parts += f" + {fmt_ms(r.get('h2d_ms'))} + {fmt_ms(r.get('d2h_ms'))}"
            table.add_row(dev, r.get("configuration", ""), str(r["batch_size"]), fmt_ms(r.get("latency_ms")), parts,
                          f"{r['items_per_s']:,.1f}" if r.get("items_per_s") else "-", r.get("status", ""))
    return table
