"""One self-contained HTML report: records in, one string out.

Everything is inline (CSS, SVG figures); the page loads nothing from the network and runs no
script, so it can be mailed, attached to an issue or opened offline. Colours follow the
reader's light or dark preference (``prefers-color-scheme``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from devicebench.reports.cost import PRICE_TABLE_DATE, Prices
from devicebench.measure.config import TimingPolicy
from devicebench.measure.energy import IDLE_BASELINE_S, TDP_TABLE_DATE
from devicebench.reports.escape import html_text
from devicebench.reports.figures import (
    dataset_words,
    draws_crossover,
    have_matplotlib,
    latency_figure,
    sustained_figure,
    throughput_figure,
    training_figure,
)
from devicebench.reports.summary import config_label, copy_rows, cost_rows, crossovers, energy_rows
from devicebench.reports.summary import memory_rows, parity_text, training_rows, variant_text
from devicebench.reports.tables import DETAIL_LEGEND, fmt_ms, latency_cells, seed_rows, warnings_for
from devicebench.results.records import InferenceRecord, RunInfo, TrainingRecord

__all__ = ["render_html", "render_html_job", "CSS"]

CSS = """
:root { color-scheme: light dark; --fg:#1b1f24; --bg:#ffffff; --muted:#57606a; --line:#d0d7de;
  --head:#f6f8fa; --warn-bg:#fff8c5; --warn-line:#d4a72c; --accent:#0969da; }
@media (prefers-color-scheme: dark) {
  :root { --fg:#e6edf3; --bg:#0d1117; --muted:#9198a1; --line:#3d444d; --head:#161b22;
    --warn-bg:#2e2a13; --warn-line:#9e6a03; --accent:#4493f8; } }
html { background: var(--bg); color: var(--fg); }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; max-width: 1100px;
  margin: 0 auto; padding: 1.5rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { border-bottom: 1px solid var(--line);
  padding-bottom: .2rem; margin-top: 2.2rem; } h3 { margin-bottom: .3rem; }
.sub, .note, caption { color: var(--muted); } .note { font-size: .9rem; }
/* Every table fits the page: it takes the container's width and its cells wrap at spaces (a
   word longer than its whole column breaks) instead of hiding columns behind a scroll bar;
   the full data is in the JSON and CSV exports. */
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: .85rem;
  font-variant-numeric: tabular-nums; width: 100%; max-width: 100%; table-layout: auto; }
caption { text-align: left; padding-bottom: .3rem; caption-side: top; }
th, td { border: 1px solid var(--line); padding: .2rem .4rem; text-align: left; vertical-align: top;
  overflow-wrap: break-word; hyphens: none; }
th { background: var(--head); font-weight: 600; } td.num { text-align: right; }
.legend { color: var(--muted); font-size: .85rem; margin-top: -.6rem; }
.warn { background: var(--warn-bg); border-left: 4px solid var(--warn-line); padding: .5rem .8rem;
  margin: .8rem 0; } .warn ul { margin: .2rem 0; padding-left: 1.2rem; }
.tag { display: inline-block; border: 1px solid var(--line); border-radius: 4px; padding: 0 .3rem;
  font-size: .8rem; } .tag.est { border-color: var(--warn-line); }
figure { margin: 1rem 0; } svg.fig { width: 100%; max-width: 900px; height: auto; display: block; color: var(--fg); }
figcaption { color: var(--muted); font-size: .9rem; }
code { background: var(--head); padding: 0 .25rem; border-radius: 3px; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: .1rem 1rem; } dl.kv dt { color: var(--muted); }
footer { margin-top: 3rem; color: var(--muted); font-size: .85rem; }
"""


def _e(value: Any) -> str:
    return html_text(value)


def _num(value: float | None, fmt: str = "{:.3g}", dash: str = "-") -> str:
    if value is None:
        return dash
    try:
        return _e(fmt.format(value))
    except (ValueError, TypeError):  # not a number after all: shown as text, escaped
        return _e(value)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, caption: str = "", cls: str = "data",
           numeric_from: int = 99, table_id: str = "") -> str:
    """A table whose cells are already-escaped HTML; columns from ``numeric_from`` right-aligned."""
    out = [f'<table class="{cls}"' + (f' id="{table_id}"' if table_id else "") + ">"]
    if caption:
        out.append(f"<caption>{caption}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in headers) + "</tr></thead><tbody>")
    for row in rows:
        cells = [f'<td class="num">{c}</td>' if i >= numeric_from else f"<td>{c}</td>" for i, c in enumerate(row)]
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _counts(records: Sequence[InferenceRecord], training: Sequence[TrainingRecord]) -> str:
    """``4 inference configurations, 2 training configurations`` (each kind only when present)."""
    parts = [f"{n} {kind} configuration{'s' if n != 1 else ''}"
             for n, kind in ((len(records), "inference"), (len(training), "training")) if n]
    return ", ".join(parts) or "no configurations"


def _figure(svg: str | None, caption: str) -> str:
    if svg is None:
        return ""
    return f"<figure>{svg}<figcaption>{_e(caption)}</figcaption></figure>"


def _environment(run: RunInfo, records: Sequence[InferenceRecord]) -> dict[str, Any]:
    if run.environment:
        return run.environment
    for r in records:
        if r.environment:
            return r.environment
    return {}


def _machine(env: dict[str, Any]) -> str:
    cpu = env.get("cpu", {}) or {}
    accs = env.get("accelerators", []) or []
    gpu = "; ".join(f"{a.get('device')}: {a.get('name')}" for a in accs) or "no accelerator found"
    return (f"<p class=\"machine\"><b>CPU</b> {_e(cpu.get('model', '?'))} ({_e(cpu.get('physical_cores'))} physical / "
            f"{_e(cpu.get('logical_cores'))} logical cores, {_e(cpu.get('affinity_cores'))} usable, "
            f"{_e(cpu.get('memory_total_gb'))} GiB RAM) &middot; <b>Accelerators</b> {_e(gpu)} &middot; "
            f"<b>torch</b> {_e(env.get('torch', '?'))} &middot; {_e(env.get('os', ''))}</p>")


def _seed_section(records: Sequence[InferenceRecord]) -> str:
    rows, accels = seed_rows(records)
    headers = ["Model", "Batch", "Precision", "CPU"]
    for label in accels:
        headers += [f"{label} end to end", f"Speedup {label} [95% CI]"]
    if not accels:
        headers += ["GPU", "Speedup"]
    body = []
    for row in rows:
        cells = [_e(row.model), _e(row.batch_size), _e(row.precision), _cell(row.cpu)]
        if not accels:
            cells += ["no GPU found", "-"]
        for label in accels:
            sp = row.speedups.get(label)
            cells += [_cell(row.accelerators.get(label)), _e(sp.text()) if sp else "-"]
        body.append(cells)
    return ("<h2 id=\"seed\">Inference time: CPU against GPU</h2>"
            + _table(headers, body, caption="Median latency per batch. Speedup = CPU median / accelerator "
                     "median, end to end (host tensor in, answer back on the host), with its 95% bootstrap "
                     "interval over the raw samples.", numeric_from=3, table_id="seed-table"))


def _cell(record: InferenceRecord | None) -> str:
    if record is None:
        return "-"
    if not record.ok:
        return _e(record.status.upper())
    lat = record.user_latency
    return _e(fmt_ms(lat.median if lat else None)) + (f' <span class="tag est">{lat.flag}</span>' if lat and lat.flag else "")


def _detail_section(records: Sequence[InferenceRecord]) -> str:
    has_variant = any(variant_text(r) for r in records)
    headers = ["Model", "Device", "Batch", "Precision"] + (["Variant"] if has_variant else []) + [
        "Median [95% CI]", "p90 / p99", "IQR", "n", "Items/s", "E2E median", "First call", "Threads", "Status"]
    body = []
    for r in records:
        row = [_e(r.model), _e(r.device.label), _e(r.batch_size), _e(r.precision)]
        if has_variant:
            row.append(_e(variant_text(r)))
        status = r.status if r.ok else f"{r.status}: {(r.message or '').splitlines()[0][:80] if r.message else ''}"
        row += [*map(_e, latency_cells(r)), _e(r.threads or "-"), _e(status)]
        body.append(row)
    return ("<h3 id=\"detail\">Every configuration</h3>"
            + _table(headers, body, caption="Latency per batch. " + _e(DETAIL_LEGEND),
                     numeric_from=5 if has_variant else 4, table_id="detail-table"))


def _energy_section(records: Sequence[InferenceRecord]) -> str:
    rows = energy_rows(records)
    if not rows:
        return ("<h2 id=\"energy\">Energy</h2><p class=\"note\">These records carry no energy figures "
                "(measured before energy was recorded).</p>")
    body = []
    for r in rows:
        tag = f'<span class="tag{"" if r.measured else " est"}">{_e(r.source)}{"" if r.measured else " (estimate)"}</span>'
        body.append([_e(r.model), _e(r.device), _e(r.batch_size), _e(r.precision), tag,
                     _num(r.joules_per_item, "{:.4g}"), _num(r.mean_power_w, "{:.1f}"),
                     _num(r.idle_power_w, "{:.1f}"), _e(r.note)])
    text = ("Energy of the compute loop, counters read before and after it only. Measured figures "
            f"(<code>nvml</code>, <code>rapl</code>) have the idle power, measured over {IDLE_BASELINE_S:g} s "
            "just before, subtracted. <code>estimate-tdp</code> figures are NOT measured: the device's rated "
            f"power (TDP table of {TDP_TABLE_DATE}) times the time, an upper bound.")
    return ("<h2 id=\"energy\">Energy</h2>" + f"<p class=\"note\">{text}</p>"
            + _table(["Model", "Device", "Batch", "Precision", "Source", "J per inference", "Mean power W (above idle)",
                      "Idle W", "Note"], body, numeric_from=5, table_id="energy-table"))


def _cost_section(records: Sequence[InferenceRecord], prices: Prices) -> str:
    rows = cost_rows(records, prices)
    if not rows:
        return ""
    body = [[_e(r.model), _e(r.device), _e(r.batch_size), _e(r.precision),
             _num(r.items_per_s, "{:,.1f}"), _num(r.usd_per_hour, "{:.4g}"), _e(f"{r.price_source}: {r.price_basis}"),
             _num(r.usd_per_million, "${:,.4g}"), _num(r.electricity_usd_per_million, "${:,.4g}"), _e(r.energy_source)]
            for r in rows]
    defaults = any(r.price_source == "default-table" for r in rows)
    note = ("Cost per million inferences (one inference = one input of the batch) with the device busy all "
            "the time at the measured throughput. ")
    if defaults:
        note += (f"Prices marked <code>default-table</code> are indicative cloud on-demand list prices "
                 f"(table of {PRICE_TABLE_DATE}, not live): pass <code>--price DEVICE=USD_PER_HOUR</code> or "
                 "<code>--prices FILE</code> for yours. ")
    note += (f"Electricity at {prices.electricity_usd_per_kwh:g} USD/kWh ({_e(prices.electricity_source)}) on "
             "the energy above idle; it is what owned hardware adds, and is included in a cloud price.")
    return ("<h2 id=\"cost\">Cost</h2>" + f"<p class=\"note\">{note}</p>"
            + _table(["Model", "Device", "Batch", "Precision", "Items/s", "USD/h", "Price from", "Cost per 1M",
                      "Electricity per 1M", "Energy source"], body, numeric_from=4, table_id="cost-table"))


def _memory_section(records: Sequence[InferenceRecord]) -> str:
    body = [[_e(m.model), _e(m.device), _e(m.batch_size), _e(m.precision), _num(m.rss_peak_mb, "{:,.0f}"),
             _num(m.rss_model_mb, "{:,.0f}"), _num(m.device_allocated_peak_mb, "{:,.1f}"),
             _num(m.device_reserved_peak_mb, "{:,.1f}")] for m in memory_rows(records)]
    return ("<h2 id=\"memory\">Memory</h2>"
            + _table(["Model", "Device", "Batch", "Precision", "Peak RSS MiB", "RSS above baseline MiB",
                      "GPU allocated peak MiB", "GPU reserved peak MiB"], body, numeric_from=4,
                     caption="Peak resident set of the worker process (torch included), and what it grew by once "
                     "the model was built; the accelerator allocator's peaks.", table_id="memory-table"))


def _copies_section(records: Sequence[InferenceRecord]) -> str:
    rows = copy_rows(records)
    if not any(r.copies for r in rows):
        return ""
    body = [[_e(c.device), _e(c.name), _e(c.host_memory), _e(c.copies)] for c in rows]
    return ("<h2 id=\"copies\">Host-device copies</h2>"
            + _table(["Device", "Name", "End-to-end host buffers", "Copy speed"], body,
                     caption="End to end pays for copying the inputs to the device and the answer back: from "
                     "pageable host memory (a plain tensor) unless run with --pinned. Copy speed: host to device "
                     "(H2D) and back (D2H), each the median of timed copies of the size shown, the device "
                     "synchronised around each; GB = 10^9 bytes.", table_id="copies-table"))


def _parity_section(records: Sequence[InferenceRecord]) -> str:
    rows = [[_e(config_label(r)), _e(r.device.label), _e(parity_text(r))] for r in records if parity_text(r)]
    if not rows:
        return ""
    return ("<h2 id=\"parity\">Parity with the CPU fp32 reference</h2>"
            + _table(["Configuration", "Device", "Parity"], rows, table_id="parity-table"))


def _training_section(training: Sequence[TrainingRecord], prices: Prices) -> str:
    if not training:
        return ""
    parts = ["<h2 id=\"training\">Training: the same model, data and seed on each device</h2>"]
    if have_matplotlib():
        both = ("Left: against the epoch (do the devices learn the same?); right: against wall-clock time "
                "since training started (how much sooner the faster device gets there). Solid: training, "
                "dashed: validation; one colour per device.")
        target = any(t.target_acc is not None and t.epochs for t in training)
        parts.append(_figure(training_figure(training, "loss"), f"Figure 1: loss. {both}"))
        parts.append(_figure(training_figure(training, "accuracy"), f"Figure 2: top-1 accuracy. {both}"
                             + (" Dotted: the target accuracy." if target else "")))
    body = [[_e(t.model), _e(t.device), _e(t.status), _e(t.epochs), _num(t.final_train_loss, "{:.4g}"),
             _num(t.final_val_top1, "{:.1%}"), _num(t.median_epoch_s, "{:.3g}"), _num(t.samples_per_s, "{:,.0f}"),
             _num(t.time_to_target_s, "{:.3g}", "not reached") if t.target_acc is not None else "-",
             _num(t.usd_per_epoch, "${:.4g}"), _num(t.usd_to_target, "${:.4g}"),
             _num(t.joules_per_epoch, "{:.4g}") + (f' <span class="tag est">{_e(t.energy_source)}</span>'
                                                  if t.energy_source.startswith("estimate") else
                                                  f' <span class="tag">{_e(t.energy_source)}</span>')]
            for t in training_rows(training, prices)]
    parts.append(_table(["Model", "Device", "Status", "Epochs", "Final train loss", "Final val top-1",
                         "Median epoch s", "Samples/s", "Time to target s", "Cost per epoch", "Cost to target",
                         "J per epoch"], body, numeric_from=3, table_id="training-table",
                        caption=f"Data: {_e(dataset_words(training[0]))}. Time to target: wall-clock seconds until "
                        "validation top-1 first reached the target; J = joules."))
    return "\n".join(parts)


def _sustained_section(records: Sequence[InferenceRecord]) -> str:
    runs = [(r, r.sustained) for r in records if r.sustained is not None and r.sustained.windows]
    if not runs:
        return ""
    parts = ["<h2 id=\"sustained\">Sustained throughput</h2>"]
    if have_matplotlib():
        parts.append(_figure(sustained_figure(records), "Items per second per window over the sustained run; "
                             "device clocks and temperature were read between windows only."))
    body = []
    for r, s in runs:
        body.append([_e(config_label(r)), _e(r.device.label), _num(s.duration_s, "{:g}"), _e(len(s.windows)),
                     _e(s.device_probe), _e(s.summary.text)])
    parts.append(_table(["Configuration", "Device", "Seconds", "Windows", "Device readings", "Summary"], body,
                        table_id="sustained-table"))
    return "\n".join(parts)


def _env_section(env: dict[str, Any]) -> str:
    if not env:
        return "<h2 id=\"environment\">Environment</h2><p>not recorded</p>"
    cpu = env.get("cpu", {}) or {}
    items = [
        ("Host", env.get("hostname")), ("OS", env.get("os")), ("Python", env.get("python")),
        ("torch", env.get("torch")), ("CUDA", env.get("cuda_version")), ("cuDNN", env.get("cudnn_version")),
        ("HIP", env.get("hip_version")), ("CPU", cpu.get("model")), ("Architecture", cpu.get("arch")),
        ("Cores", f"{cpu.get('physical_cores')} physical / {cpu.get('logical_cores')} logical / "
                  f"{cpu.get('affinity_cores')} usable"),
        ("ISA", ", ".join(cpu.get("flags", []) or []) or "-"), ("torch CPU capability", cpu.get("torch_capability")),
        ("RAM GiB", cpu.get("memory_total_gb")),
        ("torch threads", f"{env.get('torch_threads')} intra-op, {env.get('torch_interop_threads')} inter-op"),
    ]
    for a in env.get("accelerators", []) or []:
        items.append((a.get("device"), f"{a.get('name')}, {a.get('memory_total_gb')} GiB, compute capability "
                      f"{a.get('compute_capability')}, driver {a.get('driver')}, {a.get('runtime')}"))
    for k, v in (env.get("packages") or {}).items():
        items.append((k, v))
    for k, v in (env.get("env_vars") or {}).items():
        items.append((f"${k}", v))
    dl = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v if v is not None else '-')}</dd>" for k, v in items)
    return f"<h2 id=\"environment\">Environment</h2><dl class=\"kv\" id=\"environment-list\">{dl}</dl>"


def _policy_text(p: TimingPolicy | None) -> str:
    if p is None:
        return "Warm-up and stopping rule: not recorded."
    return (f"Warm-up: at least {p.warmup_iters} calls and {p.warmup_s} s (at most {p.warmup_max_s} s). "
            f"Measurement: at least {p.min_iters} calls and {p.min_time_s} s, stopping once the 95% interval "
            f"of the median is within {p.target_rel_ci:.0%} of it, else at {p.max_time_s} s.")


def _method_section(records: Sequence[InferenceRecord]) -> str:
    policies = list(dict.fromkeys(r.timing.policy for r in records if r.timing.policy is not None))
    timers = sorted({t for r in records for t in (r.timing.timer, r.timing.e2e_timer) if t})
    stops = sorted({r.timing.stop_reason for r in records if r.timing.stop_reason})
    weights = sorted({r.weights for r in records})
    lines = [
        "Each configuration ran in its own fresh Python process; the parent waited blocked, taking no CPU.",
        _policy_text(policies[0] if policies else None)
        + (" (Policies differ between records.)" if len(policies) > 1 else ""),
        f"Timers: {', '.join(timers) or '-'}; stop reasons seen: {', '.join(stops) or '-'}.",
        "Compute time = the model call on inputs already on the device, the device synchronised inside the "
        "timed region; end to end = host tensors in, the answer copied back to the host"
        + (f" (host buffers: {', '.join(sorted({r.host_memory for r in records if r.host_memory}))})."
           if any(r.host_memory for r in records) else "."),
        "fp32 is IEEE fp32 on every device (TF32 off in every worker); TF32 runs only as the tf32 variant, "
        "judged against the CPU by its own tolerance.",
        "Medians with distribution-free 95% intervals (order statistics); speedups are ratios of medians with "
        "a 95% bootstrap interval (2000 resamples, fixed seed); every raw sample is kept in the records.",
        ("A result is marked noisy when its IQR exceeds 10% of the median or its interval reaches over 5% from it, "
         "and 'few samples' when it has under 6 samples (its interval then covers the median with less than 95%) "
         "or its time cap stopped it before its minimum count."),
        f"Weights: {', '.join(weights)} (random weights time the same as trained ones; they give no accuracy).",
        f"Energy: counters read before and after the compute loop only, idle baseline ({IDLE_BASELINE_S:g} s) "
        "subtracted; estimates are labelled.",
    ]
    return "<h2 id=\"method\">How it was measured</h2><ul>" + "".join(f"<li>{_e(x)}</li>" for x in lines) + "</ul>"


def render_html(
    run: RunInfo,
    records: Sequence[InferenceRecord],
    training: Sequence[TrainingRecord] = (),
    *,
    prices: Prices | None = None,
    title: str | None = None,
    tool_version: str = "",
) -> str:
    """The whole report as one HTML string (inline CSS and SVG, no script, no network).

    Args:
        run: the run (its environment describes the machine).
        records: its inference records (failed ones included: they are shown as such).
        training: its training records, for Figures 1 and 2 (may be empty).
        prices: hourly and electricity prices (the dated default table when ``None``).
        title: the page title.
        tool_version: written in the footer.
    """
    prices = prices or Prices()
    env = _environment(run, records)
    title = title or f"devicebench report: run {run.run_id}"
    models = list(dict.fromkeys(r.model for r in records))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="color-scheme" content="light dark">',
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f"<p class=\"sub\">{_e(run.started_at)} &middot; {_e(run.status)} &middot; {_counts(records, training)}"
        f" &middot; <code>{_e(run.command)}</code></p>",
        _machine(env),
    ]
    warnings = warnings_for(records)
    if any(r.weights == "random" for r in records):
        warnings.append("random weights: timings are valid, outputs and accuracy are not")
    if any(r.energy is not None and not r.energy.measured for r in records):
        warnings.append("some energy figures are estimates from a TDP table, not measurements (labelled below)")
    if warnings:
        parts.append('<div class="warn" id="warnings"><b>Warnings</b><ul>'
                     + "".join(f"<li>{_e(w)}</li>" for w in warnings) + "</ul></div>")
    if records:
        parts.append(_seed_section(records))
        parts.append(_detail_section(records))
    plots = have_matplotlib()
    if records:
        parts.append("<h2 id=\"latency\">Latency distributions</h2>")
        if not plots:
            parts.append("<p class=\"note\">Figures need matplotlib: <code>pip install devicebench[plot]</code>.</p>")
        for model in models:
            if plots:
                parts.append(_figure(latency_figure(records, model),
                                     f"{model}: every raw sample per device and batch size (box: quartiles, "
                                     "line: median, whiskers: 1.5 IQR, dots: outliers)."))
        cross = crossovers(records)
        parts.append("<h2 id=\"throughput\">Throughput against batch size</h2>")
        drawn = False
        for model in models:
            svg = throughput_figure(records, model, cross) if plots else None
            if svg:
                drawn = True
                parts.append(_figure(svg, f"{model}: items per second against batch size (log scales where the "
                                     "range is wide)" + ("; the dotted line marks the batch size where the "
                                     "accelerator overtakes the CPU." if draws_crossover(model, cross) else ".")))
        if not drawn:
            parts.append("<p class=\"note\">Measured at a single batch size: no curve to draw "
                         "(use <code>devicebench infer MODEL --batch-size 1,8,32</code>).</p>")
        if cross:
            parts.append("<ul id=\"crossover\">" + "".join(
                f"<li>{_e(c.model)} {_e(c.precision)}: {_e(c.text())}</li>" for c in cross) + "</ul>")
    parts.append(_training_section(training, prices))
    if records:
        parts.append(_energy_section(records))
        parts.append(_cost_section(records, prices))
        parts.append(_memory_section(records))
        parts.append(_copies_section(records))
        parts.append(_parity_section(records))
        parts.append(_sustained_section(records))
    parts.append(_env_section(env))
    if records:
        parts.append(_method_section(records))
    parts.append(f"<footer>Written by devicebench {_e(tool_version)} for run {_e(run.run_id)}. Self-contained: "
                 "no script, nothing loaded from the network.</footer></body></html>")
    return "\n".join(p for p in parts if p)



def render_html_job(job: tuple[RunInfo, Sequence[InferenceRecord], Sequence[TrainingRecord], Prices | None, str]) -> str:
    """:func:`render_html` with its arguments in one tuple (run, records, training, prices,
    tool version): what a worker is given to render a report in another process."""
    run, records, training, prices, version = job
    return render_html(run, records, training, prices=prices, tool_version=version)
