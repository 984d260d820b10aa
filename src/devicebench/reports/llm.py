"""LLM results as people read them: the seed-style tables (prefill and decode apart), the
detail, llama-bench's own output formats, Markdown and an HTML page. Pure functions: records
in, text or a rich table out.

llama-bench compatibility (``--output md|csv|json|jsonl``): every ``ok`` record gives two
rows, a prompt-processing row (``n_prompt = prompt``, ``n_gen = 0``) and a text-generation row
(``n_prompt = 0``, ``n_gen = gen``), with llama-bench's field names and order
(:data:`LLAMA_BENCH_FIELDS`, as of llama.cpp build 5163) and then devicebench's own
(:data:`EXTRA_FIELDS`). Two differences, both said in docs/llm.md: a text-generation row's
samples time the ``gen - 1`` decode steps (the first new token comes from the prefill), so
its ``t/s`` is ``batch x (gen - 1) / time``; and with ``--batch`` above 1 the tokens of every
sequence count.
"""

from __future__ import annotations

import csv
import html
import io
import json
import statistics
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rich.table import Table

from devicebench.reports.escape import csv_cell, md_cell
from devicebench.reports.cost import Prices, cost_per_million, electricity_per_million
from devicebench.results.llm import LlmRecord, speedup
from devicebench.results.records import RunInfo

__all__ = [
    "EXTRA_FIELDS",
    "LLAMA_BENCH_FIELDS",
    "OUTPUT_FORMATS",
    "fmt_tps",
    "llama_bench_output",
    "llama_bench_rows",
    "llm_cost_rows",
    "llm_detail_table",
    "llm_html",
    "llm_markdown",
    "llm_seed_markdown",
    "llm_seed_rows",
    "llm_seed_table",
    "llm_warnings",
]

#: llama-bench's fields, in its order (``test::get_fields()``).
LLAMA_BENCH_FIELDS = (
    "build_commit", "build_number", "cpu_info", "gpu_info", "backends", "model_filename", "model_type",
    "model_size", "model_n_params", "n_batch", "n_ubatch", "n_threads", "cpu_mask", "cpu_strict", "poll",
    "type_k", "type_v", "n_gpu_layers", "split_mode", "main_gpu", "no_kv_offload", "flash_attn",
    "tensor_split", "use_mmap", "embeddings", "n_prompt", "n_gen", "n_depth", "test_time", "avg_ns",
    "stddev_ns", "avg_ts", "stddev_ts",
)
#: devicebench's fields after llama-bench's (and ``samples_ns``/``samples_ts`` in JSON).
EXTRA_FIELDS = (
    "device", "variant", "precision", "n_seq", "timed_tokens", "ttft_ms", "tpot_ms", "itl_p50_ms",
    "itl_p99_ms", "decode_gbps", "bandwidth_share", "prefill_tflops", "joules_per_token",
    "parity_passed", "first_diff_index", "weights",
)
OUTPUT_FORMATS = ("md", "csv", "json", "jsonl")

_BACKENDS = {"cpu": "CPU", "cuda": "CUDA", "mps": "Metal", "xpu": "SYCL"}
_TYPE = {"fp32": "f32", "fp16": "f16", "bf16": "bf16"}


def fmt_tps(value: float | None) -> str:
    """Tokens per second with 3 significant figures (``24.1``, ``612``, ``1.2e+04``)."""
    if value is None:
        return "-"
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _params(n: int) -> str:
    return f"{n / 1e9:.2f} B" if n >= 1e9 else f"{n / 1e6:.2f} M"


def _size(nbytes: int) -> str:
    return f"{nbytes / 2**30:.2f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.2f} MiB"


# -- llama-bench ---------------------------------------------------------------------------


def _stats(samples_ns: list[int], tokens: int) -> tuple[int, int, float, float, list[float]]:
    ts = [tokens * 1e9 / ns for ns in samples_ns if ns > 0]
    avg_ns = int(statistics.fmean(samples_ns)) if samples_ns else 0
    std_ns = int(statistics.stdev(samples_ns)) if len(samples_ns) > 1 else 0
    avg_ts = statistics.fmean(ts) if ts else 0.0
    std_ts = statistics.stdev(ts) if len(ts) > 1 else 0.0
    return avg_ns, std_ns, avg_ts, std_ts, ts


def llama_bench_rows(records: Sequence[LlmRecord], *, tool_version: str = "") -> list[dict[str, Any]]:
    """Two rows per measured record (prompt processing, then text generation), llama-bench's
    fields first, then :data:`EXTRA_FIELDS`, then ``samples_ns`` and ``samples_ts``."""
    rows: list[dict[str, Any]] = []
    for r in records:
        if not r.ok or r.role == "parity-reference":
            continue
        env = r.environment or {}
        cpu = (env.get("cpu") or {}).get("model", "")
        gpus = ", ".join(str(a.get("name")) for a in env.get("accelerators") or [])
        shape = r.shape or {}
        kv = _TYPE.get(r.precision, r.precision)
        weight_bytes = r.sizes.weight_bytes if r.sizes else 0
        model_type = f"{shape.get('family', r.model)} {_params(r.parameters).replace(' ', '')} {r.precision.upper()}"
        if r.variant == "int8-dynamic":
            model_type += " int8-dynamic"
        common: dict[str, Any] = {
            "build_commit": f"devicebench-{tool_version}" if tool_version else "devicebench",
            "build_number": 0,
            "cpu_info": cpu,
            "gpu_info": gpus,
            "backends": _BACKENDS.get(r.device.type, r.device.type.upper()),
            "model_filename": (r.model_file or {}).get("path") or r.model,
            "model_type": model_type,
            "model_size": weight_bytes,
            "model_n_params": r.parameters,
            "n_batch": r.n_prompt,
            "n_ubatch": r.n_prompt,
            "n_threads": r.threads,
            "cpu_mask": "0x0",
            "cpu_strict": False,
            "poll": 0,
            "type_k": kv,
            "type_v": kv,
            "n_gpu_layers": int(shape.get("layers", 0)) if r.device.type != "cpu" else 0,
            "split_mode": "none",
            "main_gpu": r.device.index or 0,
            "no_kv_offload": False,
            "flash_attn": r.device.type == "cuda" and r.variant != "eager" and r.precision in ("fp16", "bf16"),
            "tensor_split": "0.00",
            "use_mmap": False,
            "embeddings": False,
        }
        stamp = _stamp(r.timestamp)
        phases = (("pp", r.n_prompt, 0, r.samples.prefill_ns, r.batch_size * r.n_prompt),
                  ("tg", 0, r.n_gen, r.samples.decode_ns, r.batch_size * (r.n_gen - 1)))
        for _phase, n_prompt, n_gen, samples, tokens in phases:
            avg_ns, std_ns, avg_ts, std_ts, ts = _stats(list(samples), tokens)
            row = dict(common)
            row.update(n_prompt=n_prompt, n_gen=n_gen, n_depth=0, test_time=stamp, avg_ns=avg_ns,
                       stddev_ns=std_ns, avg_ts=round(avg_ts, 6), stddev_ts=round(std_ts, 6))
            row.update(
                device=r.device.label, variant=r.variant, precision=r.precision, n_seq=r.batch_size,
                timed_tokens=tokens,
                ttft_ms=_r(r.ttft_ms.median if r.ttft_ms else None),
                tpot_ms=_r(r.tpot_ms.median if r.tpot_ms else None),
                itl_p50_ms=_r(r.itl_ms.median if r.itl_ms else None),
                itl_p99_ms=_r(r.itl_ms.p99 if r.itl_ms else None),
                decode_gbps=_r(r.decode_gbps), bandwidth_share=_r(r.decode_bandwidth_share),
                prefill_tflops=_r(r.prefill_tflops), joules_per_token=_r(r.joules_per_token),
                parity_passed=None if r.parity is None else r.parity.passed,
                first_diff_index=None if r.parity is None else r.parity.first_diff_index,
                weights=r.weights,
            )
            row["samples_ns"] = [int(s) for s in samples]
            row["samples_ts"] = [round(t, 6) for t in ts]
            rows.append(row)
    return rows


def _r(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


def _stamp(timestamp: str) -> str:
    try:
        return datetime.fromisoformat(timestamp).strftime("%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return timestamp


def llama_bench_output(records: Sequence[LlmRecord], fmt: str, *, tool_version: str = "") -> str:
    """The records in llama-bench's ``-o md|csv|json|jsonl`` format (the text it prints).

    Raises:
        ValueError: an unknown format.
    """
    rows = llama_bench_rows(records, tool_version=tool_version)
    if fmt == "json":
        return json.dumps(rows, indent=2) + "\n"
    if fmt == "jsonl":
        return "".join(json.dumps(row) + "\n" for row in rows)
    if fmt == "csv":
        buf = io.StringIO()
        fields = LLAMA_BENCH_FIELDS + EXTRA_FIELDS
        writer = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow(fields)
        for row in rows:
            writer.writerow(["" if row[f] is None else _csv(row[f]) for f in fields])
        # llama-bench quotes every value but writes the header bare.
        text = buf.getvalue()
        head, _, body = text.partition("\n")
        return head.replace('"', "") + "\n" + body
    if fmt == "md":
        headers = ("model", "size", "params", "backend", "threads", "test", "t/s")
        lines = ["| " + " | ".join(headers) + " |",
                 "| ------------------------------ | ---------: | ---------: | ---------- | ------: | ------------: | -------------------: |"]
        for row in rows:
            test = f"pp{row['n_prompt']}" if row["n_prompt"] else f"tg{row['n_gen']}"
            lines.append("| " + " | ".join(md_cell(c) for c in [
                f"{row['model_type']} {row['variant']}", _size(row["model_size"]), _params(row["model_n_params"]),
                row["backends"], str(row["n_threads"]), test, f"{row['avg_ts']:.2f} ± {row['stddev_ts']:.2f}",
            ]) + " |")
        return "\n".join(lines) + "\n"
    raise ValueError(f"unknown output format {fmt!r}: use one of {', '.join(OUTPUT_FORMATS)}")


def _csv(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(csv_cell(value))  # a name that looks like a formula gets a leading ' (reports/escape.py)


# -- the seed-style tables -------------------------------------------------------------------


def _group_key(r: LlmRecord) -> tuple[Any, ...]:
    return (r.model, r.n_prompt, r.n_gen, r.batch_size, r.precision, r.variant)


def llm_seed_rows(records: Sequence[LlmRecord], phase: str) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the seed table for ``prefill`` or ``decode``: model | CPU tok/s |
    one column per accelerator | speedup [95% CI]; with tuned records, a ``best`` row per
    model where each device's best passing variant meets the other's."""
    shown = [r for r in records if r.role != "parity-reference"]
    accels = list(dict.fromkeys(r.device.label for r in shown if r.device.type != "cpu"))
    key = "prefill_tps" if phase == "prefill" else "decode_tps"
    headers = ["Model", "CPU tok/s"] + [f"{a} tok/s" for a in accels] + [f"Speedup {a} [95% CI]" for a in accels]
    if not accels:
        headers += ["GPU tok/s"]
    groups: dict[tuple[Any, ...], dict[str, LlmRecord]] = {}
    for r in shown:
        groups.setdefault(_group_key(r), {})[r.device.label] = r
    best: dict[tuple[Any, ...], dict[str, LlmRecord]] = {}
    for r in shown:
        if r.best:
            best.setdefault((r.model, r.n_prompt, r.n_gen, r.batch_size, "best", ""), {})[r.device.label] = r
    rows = []
    for gkey, by_device in list(groups.items()) + list(best.items()):
        model, pp, tg, batch, precision, variant = gkey
        label = f"{model} pp{pp}/tg{tg} b{batch} " + ("best passing variant" if precision == "best" else f"{precision} {variant}")
        cpu = next((rec for lab, rec in by_device.items() if lab == "cpu"), None)
        cells = [label, _tps_cell(cpu, key, precision == "best")]
        for a in accels:
            cells.append(_tps_cell(by_device.get(a), key, precision == "best"))
        for a in accels:
            g = by_device.get(a)
            s = speedup(cpu, g, phase) if cpu is not None and g is not None and cpu.ok and g.ok else None
            cells.append(f"{s[0]:.2f}x [{s[1]:.2f}-{s[2]:.2f}]" if s else "-")
        if not accels:
            cells.append("no GPU found")
        rows.append(cells)
    return headers, rows


def _tps_cell(r: LlmRecord | None, key: str, named: bool) -> str:
    if r is None:
        return "-"
    if not r.ok:
        return r.status.upper()
    s = getattr(r, key)
    if s is None:
        return "-"
    text = f"{fmt_tps(s.median)} [{fmt_tps(s.ci95[0])}-{fmt_tps(s.ci95[1])}]" if s.n >= 2 else fmt_tps(s.median)
    if named:
        text += f" ({r.precision} {r.variant})"
    return text + (" (noisy)" if s.noisy and s.n >= 5 else "")


def llm_seed_table(records: Sequence[LlmRecord], phase: str) -> Table:
    headers, rows = llm_seed_rows(records, phase)
    what = "Prefill (prompt processing)" if phase == "prefill" else "Decode (token generation)"
    table = Table(title=f"{what}: tokens per second, median [95% CI]", title_justify="left")
    for i, h in enumerate(headers):
        table.add_column(h, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    return table


def _md(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        return md_cell(v)  # no raw HTML, no line break, | escaped (reports/escape.py)

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def llm_seed_markdown(records: Sequence[LlmRecord]) -> str:
    out = []
    for phase in ("prefill", "decode"):
        headers, rows = llm_seed_rows(records, phase)
        out.append(f"**{phase.capitalize()}** (tokens/s, median [95% CI])\n\n" + _md(headers, rows))
    return "\n\n".join(out) + "\n"


# -- the detail -------------------------------------------------------------------------------

_DETAIL_HEAD = ("Config", "Device", "Prefill tok/s", "Decode tok/s", "TTFT", "TPOT", "ITL p50 / p99",
                "Decode GB/s (share of peak)", "Prefill TFLOP/s", "J/token", "Weights / KV / peak",
                "Same answer", "Cold start", "Status")


def _ms(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.3g} ms" if v < 100 else f"{v:.0f} ms"


def _mem(r: LlmRecord) -> str:
    if r.sizes is None:
        return "-"
    peak = "-"
    if r.memory is not None:
        if r.memory.device_allocated_peak_mb is not None:
            peak = f"{r.memory.device_allocated_peak_mb:.0f} MiB dev"
        elif r.memory.rss_peak_mb is not None:
            peak = f"RSS {r.memory.rss_peak_mb:.0f} MiB"
    return f"{r.sizes.weight_bytes / 2**20:.1f} / {r.sizes.kv_cache_bytes / 2**20:.2f} MiB / {peak}"


def _parity(r: LlmRecord) -> str:
    if r.role in ("reference", "parity-reference"):
        return "reference"
    if r.parity is None:
        return "not checked"
    return ("ok: " if r.parity.passed else "FAILED: ") + r.parity.summary()


def _cold(r: LlmRecord) -> str:
    c = r.cold_start
    if c is None:
        return "-"
    bits = [f"build {c.build_s:.1f} s"]
    if c.compile_s is not None:
        bits.append(f"compile {c.compile_s:.1f} s")
    elif c.first_generation_s is not None:
        bits.append(f"1st gen {c.first_generation_s:.2f} s")
    return ", ".join(bits)


def _detail_cells(r: LlmRecord) -> list[str]:
    def tps(s: Any) -> str:
        return "-" if s is None else f"{fmt_tps(s.median)} [{fmt_tps(s.ci95[0])}-{fmt_tps(s.ci95[1])}]"

    bw = "-"
    if r.decode_gbps is not None:
        bw = f"{r.decode_gbps:.3g}" + (f" ({r.decode_bandwidth_share:.0%} of {r.bandwidth.peak_gbps:.3g})"
                                       if r.decode_bandwidth_share is not None and r.bandwidth else "")
    energy = "-"
    if r.joules_per_token is not None:
        energy = f"{r.joules_per_token:.3g}" + ("" if r.energy is None or r.energy.measured else " (est.)")
    role = "".join(f" [{t}]" for t in (r.role, "best" if r.best else "") if t)
    return [
        f"pp{r.n_prompt} tg{r.n_gen} b{r.batch_size} {r.precision} {r.variant}{role}", r.device.label,
        tps(r.prefill_tps), tps(r.decode_tps), _ms(r.ttft_ms.median if r.ttft_ms else None),
        _ms(r.tpot_ms.median if r.tpot_ms else None),
        f"{_ms(r.itl_ms.median)} / {_ms(r.itl_ms.p99)}" if r.itl_ms else "-", bw,
        f"{r.prefill_tflops:.3g}" if r.prefill_tflops is not None else "-", energy, _mem(r), _parity(r), _cold(r),
        r.status if r.ok else f"{r.status}: {r.message.splitlines()[0] if r.message else ''}",
    ]


def llm_detail_table(records: Sequence[LlmRecord]) -> Table:
    table = Table(title="Detail: every configuration (tok/s median [95% CI]; latencies median)", title_justify="left")
    for i, h in enumerate(_DETAIL_HEAD):
        table.add_column(h, justify="right" if 2 <= i <= 9 else "left")
    for r in records:
        table.add_row(*_detail_cells(r))
    return table


def llm_warnings(records: Sequence[LlmRecord]) -> list[str]:
    out = []
    for r in records:
        if r.ok and r.parity is not None and not r.parity.passed:
            out.append(f"{r.label}: not the same answer as CPU fp32: {'; '.join(r.parity.reasons)}")
        for name, s in (("decode", r.decode_tps), ("prefill", r.prefill_tps)):
            if r.ok and s is not None and s.n >= 5 and s.noisy:
                out.append(f"{r.label}: {name} is noisy (IQR {s.iqr / s.median:.0%} of the median): close other "
                           "programs or use more --repetitions")
        if r.ok and r.bandwidth is not None and r.bandwidth.error:
            out.append(f"{r.label}: bandwidth probe failed: {r.bandwidth.error}")
    if any(r.weights == "random" for r in records):
        out.append("random weights: timings are valid, the generated tokens mean nothing")
    return out


# -- cost -------------------------------------------------------------------------------------


def llm_cost_rows(records: Sequence[LlmRecord], prices: Prices) -> list[dict[str, Any]]:
    """Per record: USD per million generated (decode) and prompt (prefill) tokens at the
    device's hourly price, and electricity per million tokens from the energy per token."""
    rows = []
    for r in records:
        if not r.ok or r.decode_tps is None:
            continue
        price = prices.for_device(r.device.label, r.device.type, r.device.name, cores=r.threads or None)
        row: dict[str, Any] = {"config": r.label, "device": r.device.label, "usd_per_hour": None, "price_source": None,
                               "usd_per_m_generated": None, "usd_per_m_prompt": None,
                               "electricity_usd_per_m_tokens": None, "energy_source": None}
        if price is not None:
            row.update(usd_per_hour=price.usd_per_hour, price_source=f"{price.source}: {price.basis}",
                       usd_per_m_generated=cost_per_million(r.decode_tps.median, price.usd_per_hour))
            if r.prefill_tps is not None:
                row["usd_per_m_prompt"] = cost_per_million(r.prefill_tps.median, price.usd_per_hour)
        if r.joules_per_token is not None and r.energy is not None:
            row["electricity_usd_per_m_tokens"] = electricity_per_million(r.joules_per_token, prices.electricity_usd_per_kwh)
            row["energy_source"] = r.energy.source + ("" if r.energy.measured else " (estimate)")
        rows.append(row)
    return rows


def _usd(v: float | None) -> str:
    return "-" if v is None else (f"${v:.4g}")


# -- Markdown and HTML ---------------------------------------------------------------------


def _machine_line(run: RunInfo, records: Sequence[LlmRecord]) -> str:
    env = run.environment or next((r.environment for r in records if r.environment), {})
    cpu = (env.get("cpu") or {}).get("model", "?")
    gpus = ", ".join(str(a.get("name")) for a in env.get("accelerators") or []) or "no accelerator"
    return f"CPU {cpu}; {gpus}; torch {env.get('torch', '?')}"


def llm_markdown(run: RunInfo, records: Sequence[LlmRecord], prices: Prices | None = None) -> str:
    prices = prices or Prices()
    lines = [f"# devicebench LLM run {run.run_id}", "", f"{run.started_at} · {run.status} · `{run.command}`", "",
             _machine_line(run, records), "", llm_seed_markdown(records), "## Detail", "",
             _md(_DETAIL_HEAD, [_detail_cells(r) for r in records]), "", "## Cost per million tokens", ""]
    cost = llm_cost_rows(records, prices)
    lines.append(_md(("Config", "USD/h", "per M generated", "per M prompt", "electricity per M tokens", "price"),
                     [(c["config"], _usd(c["usd_per_hour"]), _usd(c["usd_per_m_generated"]), _usd(c["usd_per_m_prompt"]),
                       _usd(c["electricity_usd_per_m_tokens"]), c["price_source"] or "no price") for c in cost]))
    warnings = llm_warnings(records)
    if warnings:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in warnings]
    return "\n".join(lines) + "\n"


def _h(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _html_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], caption: str = "") -> str:
    out = ['<table class="data">']
    if caption:
        out.append(f"<caption>{_h(caption)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{_h(h)}</th>" for h in headers) + "</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{_h(c)}</td>" for c in row) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def itl_figure(records: Sequence[LlmRecord]) -> str | None:
    """Box plots of every inter-token latency, one box per configuration (inline SVG), or
    ``None`` without matplotlib or samples."""
    recs = [r for r in records if r.ok and r.samples.steps_ns]
    if not recs:
        return None
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        return None
    from devicebench.reports.figures import _RC, _to_svg

    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(7.0, 0.45 * len(recs) + 1.3))
        ax = fig.subplots()
        major, minor = (int(x) for x in matplotlib.__version__.split(".")[:2])
        orient = {"orientation": "horizontal"} if (major, minor) >= (3, 10) else {"vert": False}
        ax.boxplot([r.samples.itl_ms for r in recs], **orient, widths=0.6, showfliers=True,
                   flierprops={"markersize": 2})
        ax.set_yticks(range(1, len(recs) + 1), [f"{r.device.label} {r.precision} {r.variant}" for r in recs])
        ax.set_xlabel("inter-token latency (ms), every decode step of every repetition")
        ax.set_xscale("log")
        return _to_svg(fig, "inter-token latency distribution")


def llm_html_section(records: Sequence[LlmRecord], prices: Prices | None = None) -> str:
    """The LLM part of a report: both seed tables, the detail, the per-token latency
    distribution, cost and the method (HTML, escaped)."""
    prices = prices or Prices()
    parts = ['<h2 id="llm">Language models: tokens per second</h2>']
    for phase in ("prefill", "decode"):
        headers, rows = llm_seed_rows(records, phase)
        parts.append(_html_table(headers, rows, caption=f"{phase.capitalize()}: tokens/s, median [95% CI]; "
                                 "speedup = GPU over CPU with a 95% bootstrap interval"))
    parts.append(_html_table(_DETAIL_HEAD, [_detail_cells(r) for r in records], caption="Every configuration"))
    svg = itl_figure(records)
    if svg:
        parts.append(f"<figure>{svg}<figcaption>Per-token latency: every decode step (device synchronised after each "
                     "token), box = quartiles, line = median.</figcaption></figure>")
    cost = llm_cost_rows(records, prices)
    if cost:
        parts.append(_html_table(
            ("Config", "USD/h", "per M generated", "per M prompt", "electricity per M tokens", "energy", "price"),
            [(c["config"], _usd(c["usd_per_hour"]), _usd(c["usd_per_m_generated"]), _usd(c["usd_per_m_prompt"]),
              _usd(c["electricity_usd_per_m_tokens"]), c["energy_source"] or "-", c["price_source"] or "no price")
             for c in cost], caption="Cost per million tokens (the device fully used at the measured rate)"))
    warnings = llm_warnings(records)
    if warnings:
        parts.append('<div class="warn"><b>Warnings</b><ul>' + "".join(f"<li>{_h(w)}</li>" for w in warnings)
                     + "</ul></div>")
    parts.append("<p class=\"note\">Prefill: a random prompt timed to its last position's logits. Decode: gen - 1 "
                  "single-token steps after it, greedy, EOS ignored, the device synchronised after every token. "
                  "Bandwidth share: bytes read per decode step (weights + KV cache) x steps/s over the device's "
                  "measured copy bandwidth. See docs/llm.md.</p>")
    return "\n".join(parts)


def llm_html(run: RunInfo, records: Sequence[LlmRecord], prices: Prices | None = None, *, tool_version: str = "") -> str:
    """A self-contained HTML page for an LLM run (inline CSS and SVG, no script, no network)."""
    from devicebench.reports.html import CSS

    title = f"devicebench LLM report: run {run.run_id}"
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_h(title)}</title><style>{CSS}</style></head><body>", f"<h1>{_h(title)}</h1>",
        f"<p class=\"sub\">{_h(run.started_at)} &middot; {_h(run.status)} &middot; <code>{_h(run.command)}</code></p>",
        f"<p class=\"machine\">{_h(_machine_line(run, records))}</p>",
        llm_html_section(records, prices),
        (f"<footer>Written by devicebench {_h(tool_version)} for run {_h(run.run_id)}. Self-contained: no script, "
        "nothing loaded from the network.</footer></body></html>"),
    ])
