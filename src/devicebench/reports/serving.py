"""Serving and pipeline results as tables, a figure and a page: pure functions, records in.

* :func:`serving_table`: per device and scenario, the answer (max rate under the target,
  single-stream p90, best offline throughput, or the concurrency sweep), cost per million
  requests at that rate beside energy per request, and the generator's slip.
* :func:`trials_table`: every trial of the search (the p99-against-offered-rate curve).
* :func:`pipeline_table` and :func:`pipeline_headline`: each split's stages, its bottleneck,
  the split to use, and "the GPU's speedup on the model alone is X; with decoding counted Y".
* :func:`serving_html`: one self-contained page with the curve as inline SVG.
* :func:`compare_serving`: two runs' max rates side by side.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

from rich.table import Table

from devicebench.reports.cost import Prices, cost_per_million
from devicebench.reports.escape import md_cell, md_text
from devicebench.results.records import RunInfo
from devicebench.results.serving import PipelineRecord, ServingRecord

__all__ = [
    "compare_serving",
    "p99_curve_figure",
    "pipeline_headline",
    "pipeline_markdown",
    "pipeline_rows",
    "pipeline_table",
    "serving_html",
    "serving_json",
    "serving_markdown",
    "serving_rows",
    "serving_table",
    "trials_table",
]


def _f(value: float | None, fmt: str = "{:.3g}", none: str = "-") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return none
    return fmt.format(value)


def _ms(value: float | None) -> str:
    return _f(value, "{:.3g} ms", "> target (waiting)")


def serving_rows(records: Sequence[ServingRecord], prices: Prices) -> list[dict[str, Any]]:
    """One plain row per record: what the table, the page and the JSON show."""
    rows = []
    for r in records:
        price = prices.for_device(r.device.label, r.device.type, r.device.name, cores=r.threads or None)
        row: dict[str, Any] = {
            "model": r.model, "device": r.device.label, "device_name": r.device.name, "scenario": r.scenario,
            "status": r.status, "message": r.message.splitlines()[0] if r.message else "",
            "target": f"p{r.quantile * 100:g}<={r.target_ms:g}ms" if r.scenario == "server" else "",
            "max_rate_per_s": r.max_rate, "single_p90_ms": (r.single_stream or {}).get("p90_ms"),
            "usd_per_hour": price.usd_per_hour if price else None, "price_source": price.source if price else None,
            "usd_per_million": None, "joules_per_request": r.joules_per_request,
            "energy_source": (r.energy or {}).get("source"), "goodput_per_s": (r.confirm or {}).get("goodput_per_s"),
            "p99_at_rate_ms": (r.confirm or {}).get("p99_ms"),
            "slip_p99_ms": max([t.get("slip_p99_ms") or 0.0 for t in r.trials], default=None),
            "calibration_slip_p99_ms": (r.calibration or {}).get("slip_p99_ms"),
            "warnings": list(r.warnings),
        }
        rate = r.max_rate if r.scenario == "server" else None
        best = r.best_offline
        if r.scenario == "offline" and best:
            rate = best["items_per_s"]
            row["offline_best_batch"] = best["batch"]
        if r.scenario == "single-stream" and r.single_stream:
            rate = 1e3 / r.single_stream["mean_ms"]
        if r.scenario == "concurrency" and r.concurrency:
            rate = max(p["throughput_per_s"] for p in r.concurrency)
        row["rate_per_s"] = rate
        if rate and price:
            row["usd_per_million"] = cost_per_million(rate, price.usd_per_hour)
        rows.append(row)
    return rows


def serving_table(records: Sequence[ServingRecord], prices: Prices) -> Table:
    table = Table(title="Serving: the rate each device sustains (latency from scheduled arrival to answer on the host)",
                  title_justify="left")
    for col in ("Model", "Device", "Scenario", "Answer", "p90 alone", "USD / 1M req", "J / req", "Gen. slip p99"):
        table.add_column(col, justify="left" if col in ("Model", "Device", "Scenario", "Answer") else "right")
    for row, r in zip(serving_rows(records, prices), records):
        if r.status != "ok":
            answer = f"{r.status}: {row['message'][:80]}"
        elif r.scenario == "server":
            answer = (f"{_f(r.max_rate)}/s at {row['target']}" if r.max_rate else f"no rate met {row['target']}")
        elif r.scenario == "offline":
            answer = f"{_f(row['rate_per_s'])}/s at batch {row.get('offline_best_batch', '-')}"
        elif r.scenario == "concurrency":
            answer = ", ".join(f"N={p['concurrency']}: {_f(p['throughput_per_s'])}/s p99 {_ms(p['p99_ms'])}"
                               for p in r.concurrency)
        else:
            answer = f"p90 {_ms(row['single_p90_ms'])} ({_f(row['rate_per_s'])}/s)"
        cost = _f(row["usd_per_million"], "{:.3g}") + (" (default price)" if row["price_source"] == "default-table" else "")
        energy = _f(row["joules_per_request"]) + (" (est.)" if row["energy_source"] == "estimate-tdp" else "")
        table.add_row(r.model, f"{r.device.label}", r.scenario, answer, _ms(row["single_p90_ms"]), cost, energy,
                      _f(row["slip_p99_ms"], "{:.2f} ms"))
    return table


def trials_table(record: ServingRecord) -> Table:
    """The search, trial by trial: p99 against offered rate (the curve as numbers)."""
    table = Table(title=f"{record.model} on {record.device.label}: trials of the search "
                  f"(target p{record.quantile * 100:g} <= {record.target_ms:g} ms)", title_justify="left")
    for col in ("Offered /s", "Verdict", "p50", "p90", "p99", f"p{record.quantile * 100:g} 95% bound", "Goodput /s",
                "Mean batch", "Slip p99", "Requests", "Ran"):
        table.add_column(col, justify="right")
    for t in sorted(record.trials, key=lambda t: t.get("rate", 0)):
        bound = t.get("quantile_bound_ms") or [None, None]
        # "(early)": stopped once decided; "~": decided by the point estimate alone (too few requests for the bound)
        verdict = t.get("verdict", "?") + (" (early)" if t.get("stopped_early") else "") + (
            "" if t.get("decided_by") in ("bound", "certain") else " ~")
        table.add_row(_f(t.get("rate")), verdict, _ms(t.get("p50_ms")), _ms(t.get("p90_ms")), _ms(t.get("p99_ms")),
                      f"{_f(bound[0])}-{_f(bound[1], none='inf')}", _f(t.get("goodput_per_s")), _f(t.get("mean_batch")),
                      _f(t.get("slip_p99_ms"), "{:.2f} ms") + (" SLIP" if t.get("slipped") else ""),
                      f"{t.get('n_answered', 0)}/{t.get('n_scheduled', 0)}", _f(t.get("elapsed_s"), "{:.1f} s"))
    return table


def pipeline_table(records: Sequence[PipelineRecord]) -> Table:
    table = Table(title="Pipeline: files to answers, each stage in ms per item", title_justify="left")
    for col in ("Model", "Model on", "Decode", "Workers", "Items/s", "read", "decode/tok.", "wait", "copy", "model",
                "Bottleneck"):
        table.add_column(col, justify="left" if col in ("Model", "Model on", "Decode", "Bottleneck") else "right")
    for r in records:
        if r.status != "ok":
            table.add_row(r.model, r.device.label, "-", "-", r.status, "", "", "", "", "", r.message.splitlines()[0][:60] if r.message else "")
            continue
        best = r.best
        for s in r.splits:
            st = s.get("stage_ms_per_item") or {}
            mark = " *" if s is best else ""
            table.add_row(r.model, r.device.label, s.get("decode", "?"), str(s.get("workers", "")),
                          (_f(s.get("items_per_s")) + mark) if s.get("status") == "ok" else str(s.get("status")),
                          _f(st.get("read")), _f(st.get("decode", st.get("tokenise"))), _f(st.get("wait")),
                          _f(st.get("copy")), _f(st.get("model")), s.get("bottleneck", s.get("message", ""))[:60])
    return table


def pipeline_headline(records: Sequence[PipelineRecord]) -> list[str]:
    """The split to use per device, and the GPU's speedup without and with decoding."""
    lines = []
    for r in records:
        best = r.best
        if best:
            how = f"decode on the {best['decode'].upper()}" + (f" with {best['workers']} loader worker(s)" if best["decode"] == "cpu" else "")
            lines.append(f"{r.model} on {r.device.label}: use {how}: {best['items_per_s']:.3g} items/s end to end "
                         f"(bottleneck: {best.get('bottleneck', '-')}; the model alone does {_f(r.model_only_per_s)}/s)")
        if r.decode_errors:
            lines.append(f"{len(r.decode_errors)} file(s) could not be decoded and were skipped, e.g. {r.decode_errors[0]}")
        if r.skipped_files:
            lines.append(f"{r.skipped_files} entr(ies) in {r.source} skipped (not a regular .jpg/.jpeg file, a link, or over 64 MiB)")
    by_model: dict[str, dict[str, PipelineRecord]] = {}
    for r in records:
        if r.ok:
            by_model.setdefault(r.model, {})[r.device.type] = r
    for model, devs in by_model.items():
        cpu, gpu = devs.get("cpu"), next((devs[t] for t in devs if t != "cpu"), None)
        if cpu is None:
            continue
        if gpu is None:
            lines.append(f"{model}: no GPU was measured, so the GPU's share of the pipeline is not measured here "
                         f"(run on a machine with a GPU, or --device cpu,cuda)")
            continue
        alone = (gpu.model_only_per_s or 0) / (cpu.model_only_per_s or math.inf)
        with_decode = (gpu.best or {}).get("items_per_s", 0) / ((cpu.best or {}).get("items_per_s") or math.inf)
        what = "tokenisation" if gpu.input_kind == "text" else "decoding"
        lines.append(f"{model}: the GPU's speedup on the model alone is {alone:.2f}x; with {what} counted it is "
                     f"{with_decode:.2f}x (best split on each side)")
    return lines


def pipeline_rows(records: Sequence[PipelineRecord]) -> list[dict[str, Any]]:
    """One flat row per (device, split): items/s end to end, the bottleneck, ms per item of each stage."""
    rows = []
    for r in records:
        best = r.best
        for s in r.splits:
            row: dict[str, Any] = {
                "model": r.model, "device": r.device.label, "decode": s.get("decode"), "workers": s.get("workers"),
                "status": s.get("status"), "items_per_s": s.get("items_per_s"), "bottleneck": s.get("bottleneck", ""),
                "best": s is best, "model_only_per_s": r.model_only_per_s}
            row.update({f"{k}_ms_per_item": v for k, v in (s.get("stage_ms_per_item") or {}).items()})
            rows.append(row)
    return rows


def pipeline_markdown(records: Sequence[PipelineRecord]) -> str:
    lines = ["| Model | Model on | Decode | Workers | Items/s | Bottleneck |", "|---|---|---|---|---|---|"]
    for row in pipeline_rows(records):
        lines.append(f"| {md_cell(row['model'])} | {md_cell(row['device'])} | {md_cell(str(row['decode']))} | "
                     f"{md_cell(str(row['workers']))} | {_f(row['items_per_s'])}{' *' if row['best'] else ''} | "
                     f"{md_cell(str(row['bottleneck']))} |")
    return "\n".join(lines + [""] + [md_text(line) for line in pipeline_headline(records)]) + "\n"


def p99_curve_figure(records: Sequence[ServingRecord]) -> str | None:
    """p99 latency against offered rate, one line per device, the target dashed (SVG)."""
    from devicebench.reports.figures import _subplots, _to_svg, have_matplotlib

    server = [r for r in records if r.scenario == "server" and r.trials]
    if not server or not have_matplotlib():
        return None
    fig, ax = _subplots((7.0, 4.0))
    top = 0.0
    for r in server:
        # Two trials at one rate (a search's and a failed confirmation's) may have a p99 and
        # none (stopped early): order by rate, then put the known p99 first.
        pts = sorted(((t["rate"], t.get("p99_ms")) for t in r.trials if t.get("rate")),
                     key=lambda p: (p[0], p[1] is None, p[1] or 0.0))
        ys = [y if y is not None else 3 * r.target_ms for _, y in pts]
        top = max(top, r.target_ms)
        ax.plot([x for x, _ in pts], ys, marker="o", label=f"{r.model} {r.device.label}")
        ax.axhline(r.target_ms, linestyle="--", linewidth=1)
    ax.set_xlabel("offered rate (requests/s)")
    ax.set_ylabel("p99 latency from scheduled arrival (ms)")
    ax.set_ylim(0, 3 * top if top else None)
    ax.legend()
    return _to_svg(fig, "p99 latency against offered rate")


def serving_markdown(records: Sequence[ServingRecord], prices: Prices) -> str:
    lines = ["| Model | Device | Scenario | Rate /s | p99 at rate | USD / 1M | J / req | slip p99 |", "|---|---|---|---|---|---|---|---|"]
    for row in serving_rows(records, prices):
        lines.append(f"| {md_cell(row['model'])} | {md_cell(row['device'])} | {md_cell(row['scenario'])} | {_f(row['rate_per_s'])} | "
                     f"{_ms(row['p99_at_rate_ms'])} | {_f(row['usd_per_million'])} | {_f(row['joules_per_request'])} | "
                     f"{_f(row['slip_p99_ms'], '{:.2f} ms')} |")
    return "\n".join(lines) + "\n"


def serving_json(run: RunInfo, records: Sequence[ServingRecord], pipes: Sequence[PipelineRecord],
                 prices: Prices) -> dict[str, Any]:
    return {"tool": "devicebench", "run": run.to_dict(), "prices": prices.to_dict(),
            "serving": serving_rows(records, prices), "pipeline_headline": pipeline_headline(pipes),
            "records": [r.to_dict() for r in list(records) + list(pipes)]}


def serving_html(run: RunInfo, records: Sequence[ServingRecord], pipes: Sequence[PipelineRecord], prices: Prices) -> str:
    """A self-contained page: the answer table, the p99 curve, each search's trials, the pipeline."""
    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>devicebench serving {esc(run.run_id)}</title>",
             ("<style>body{font-family:sans-serif;max-width:1200px;margin:auto}table{border-collapse:collapse}"
              "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}svg.fig{max-width:100%;height:auto}</style>"
              "</head><body>"), f"<h1>Serving run {esc(run.run_id)}</h1>",
             f"<p>{esc(run.command)} &middot; {esc(run.started_at)} &middot; {esc(run.hostname)}</p>"]
    if records:
        rows = serving_rows(records, prices)
        parts.append("<h2>Rate under the target</h2><p>Latency runs from each request's scheduled arrival "
                     "(open-loop Poisson schedule) to its answer on the host. Cost per million requests is the hourly "
                     "price divided by the rate; energy per request was read around a confirming trial at that rate.</p>")
        parts.append("<table><tr>" + "".join(f"<th>{h}</th>" for h in (
            "Model", "Device", "Scenario", "Target", "Rate /s", "p99 at rate", "Goodput /s", "USD / 1M", "J / req",
            "Gen. slip p99", "Status")) + "</tr>")
        for row in rows:
            parts.append("<tr>" + "".join(f"<td>{esc(str(v))}</td>" for v in (
                row["model"], row["device"], row["scenario"], row["target"], _f(row["rate_per_s"]), _ms(row["p99_at_rate_ms"]),
                _f(row["goodput_per_s"]), _f(row["usd_per_million"]), _f(row["joules_per_request"]),
                _f(row["slip_p99_ms"], "{:.2f} ms"), row["status"])) + "</tr>")
        parts.append("</table>")
        for row in rows:
            for w in row["warnings"]:
                parts.append(f"<p><b>warning</b> ({esc(row['device'])}): {esc(w)}</p>")
        svg = p99_curve_figure(records)
        if svg:
            parts.append("<h2>p99 against offered rate</h2><p>Each point is one trial of the search; the dashed line is "
                         "the target. The rate found is the last point under the line before the curve turns up.</p>" + svg)
        for r in records:
            if r.trials:
                parts.append(f"<h3>{esc(r.model)} on {esc(r.device.label)}: trials</h3><table><tr>"
                             + "".join(f"<th>{h}</th>" for h in ("Offered /s", "Verdict", "p50", "p90", "p99", "Goodput /s",
                                                                 "Slip p99", "Requests")) + "</tr>")
                for t in sorted(r.trials, key=lambda t: t.get("rate", 0)):
                    parts.append("<tr>" + "".join(f"<td>{esc(str(v))}</td>" for v in (
                        _f(t.get("rate")), t.get("verdict"), _ms(t.get("p50_ms")), _ms(t.get("p90_ms")), _ms(t.get("p99_ms")),
                        _f(t.get("goodput_per_s")), _f(t.get("slip_p99_ms"), "{:.2f} ms"),
                        f"{t.get('n_answered')}/{t.get('n_scheduled')}")) + "</tr>")
                parts.append("</table>")
    if pipes:
        parts.append("<h2>Pipeline</h2><ul>" + "".join(f"<li>{esc(line)}</li>" for line in pipeline_headline(pipes)) + "</ul>")
        parts.append("<table><tr>" + "".join(f"<th>{h}</th>" for h in (
            "Model", "Model on", "Decode", "Workers", "Items/s", "read", "decode", "wait", "copy", "model", "Bottleneck")) + "</tr>")
        for pr in pipes:
            for s in pr.splits:
                st = s.get("stage_ms_per_item") or {}
                parts.append("<tr>" + "".join(f"<td>{esc(str(v))}</td>" for v in (
                    pr.model, pr.device.label, s.get("decode"), s.get("workers"), _f(s.get("items_per_s")), _f(st.get("read")),
                    _f(st.get("decode", st.get("tokenise"))), _f(st.get("wait")), _f(st.get("copy")), _f(st.get("model")),
                    s.get("bottleneck", s.get("message", "")))) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def compare_serving(a: Sequence[ServingRecord], b: Sequence[ServingRecord]) -> Table:
    """Max rate (server) or best throughput per (model, device, scenario), A against B."""
    prices = Prices(use_defaults=False)
    rows_a = {(r["model"], r["device"], r["scenario"]): r for r in serving_rows(a, prices)}
    table = Table(title="Serving: run B against run A", title_justify="left")
    for col in ("Model", "Device", "Scenario", "A /s", "B /s", "B / A", "Note"):
        table.add_column(col)
    recs_a = {(r.model, r.device.label, r.scenario): r for r in a}
    for row, rec_b in zip(serving_rows(b, prices), b):
        key = (row["model"], row["device"], row["scenario"])
        ra = rows_a.get(key)
        if ra is None:
            continue
        va, vb = ra["rate_per_s"], row["rate_per_s"]
        ratio = vb / va if va and vb else None
        note = ""
        rec_a = recs_a[key]
        if rec_a.scenario == "server":
            if rec_a.target_ms != rec_b.target_ms or rec_a.quantile != rec_b.quantile:
                note = f"different targets ({ra['target']} vs {row['target']})"
            else:
                ba = rec_a.bracket + [None, None]
                bb = rec_b.bracket + [None, None]
                if None not in (ba[0], ba[1], bb[0], bb[1]) and not (bb[0] >= ba[1] or ba[0] >= bb[1]):  # type: ignore[operator]
                    note = "within the search's brackets: no clear difference"
        table.add_row(row["model"], row["device"], row["scenario"], _f(va), _f(vb), _f(ratio, "{:.2f}x"), note)
    return table
