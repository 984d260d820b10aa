"""The answer table (model | CPU | GPU | speedup) and the detail behind it.

Rows are computed once as plain data (:class:`SeedRow`) and rendered as a rich table for the
terminal or as Markdown for documents; nothing here prints.

Terminal tables are built to fit 80 columns (:func:`inference_table`, the default); the full
detail (:func:`detail_table`, ``--wide``) is as wide as it needs. Names a user must type again
(models, devices, run ids) are never cut (:func:`new_table`: such columns do not wrap); other
cells wrap, and a word too long for its column folds onto the next line rather than losing its
end. Times are in human units (:func:`fmt_ms`: ms below 1 s, s above; never an exponent).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from math import floor, isfinite, log10
from typing import Any

from rich.markup import escape
from rich.table import Table

from devicebench.devices.sysinfo import Environment
from devicebench.devices.transfer import TransferProbe
from devicebench.measure.stats import ratio_ci
from devicebench.measure.timing import BUSY_CORES
from devicebench.results.records import InferenceRecord, RunInfo

__all__ = [
    "DETAIL_LEGEND",
    "SeedRow",
    "Speedup",
    "detail_table",
    "devices_table",
    "fmt_ci_ms",
    "fmt_ms",
    "fmt_num",
    "history_table",
    "inference_table",
    "latency_cells",
    "models_table",
    "new_table",
    "seed_grid",
    "seed_rows",
    "seed_table",
    "seed_table_markdown",
    "warnings_for",
]


def fmt_num(value: float) -> str:
    """Three significant figures, never in exponent form (``0.0412``, ``12.3``, ``1040``)."""
    if value == 0 or not isfinite(value):
        return "0" if value == 0 else "-"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.{min(2 - floor(log10(magnitude)), 12)}f}"


def _unit(ms: float) -> tuple[float, str]:
    return (1000.0, "s") if ms >= 1000 else (1.0, "ms")


def fmt_ms(value: float | None) -> str:
    """A time given in ms, in human units: ms below 1 s, s above (``0.0412 ms``, ``207 ms``,
    ``1.04 s``); three significant figures and never an exponent."""
    if value is None:
        return "-"
    scale, unit = _unit(value)
    return f"{fmt_num(value / scale)} {unit}"


def fmt_ci_ms(median: float, low: float, high: float) -> str:
    """A median and its interval in the median's unit: ``70.8 ms [70.1-72.0]``, ``1.04 s [0.964-1.26]``."""
    scale, unit = _unit(median)
    return f"{fmt_num(median / scale)} {unit} [{fmt_num(low / scale)}-{fmt_num(high / scale)}]"


#: Column kinds of :func:`new_table`: a ``name`` a user types again never wraps (so it is never
#: cut); ``text`` and ``num`` wrap at spaces and fold a word longer than the column.
_KINDS: dict[str, dict[str, Any]] = {"name": {"no_wrap": True, "justify": "left"},
                                     "text": {"overflow": "fold", "justify": "left"},
                                     "num": {"overflow": "fold", "justify": "right"}}


def new_table(title: str | None, columns: Sequence[tuple[str, str]], *, caption: str | None = None) -> Table:
    """A terminal table whose columns are ``(header, kind)`` pairs, ``kind`` one of ``name``,
    ``text``, ``num`` (see :data:`_KINDS`). Headers wrap at spaces like cells."""
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    for header, kind in columns:
        opts = dict(_KINDS[kind])
        if kind == "name":
            opts["min_width"] = len(header) if " " not in header else None
        table.add_column(header, **opts)  # type: ignore[arg-type]
    return table


@dataclass
class Speedup:
    ratio: float
    low: float
    high: float

    def text(self) -> str:
        return f"{self.ratio:.2f}x [{self.low:.2f}-{self.high:.2f}]"


@dataclass
class SeedRow:
    """One line of seed 000's table: a model at a batch size and precision on every device."""

    model: str
    batch_size: int
    precision: str
    cpu: InferenceRecord | None
    accelerators: dict[str, InferenceRecord] = field(default_factory=dict)
    speedups: dict[str, Speedup] = field(default_factory=dict)


def _cell(record: InferenceRecord | None) -> str:
    if record is None:
        return "-"
    if not record.ok:
        return record.status.upper()
    lat = record.user_latency
    assert lat is not None
    return fmt_ms(lat.median) + (f" ({lat.flag})" if lat.flag else "")


def seed_rows(records: Sequence[InferenceRecord], *, intervals: bool = True) -> tuple[list[SeedRow], list[str]]:
    """Group records into seed-table rows; returns the rows and the accelerator labels seen.

    The speedup is CPU latency / accelerator latency (end to end: host tensor in, answer back
    on the host), the ratio of medians with a 95% bootstrap interval (``intervals=False``: the
    ratio alone, its interval NaN; no numpy, for one-line summaries such as ``history``).
    """
    rows: dict[tuple[str, int, str], SeedRow] = {}
    accel_labels: list[str] = []
    for rec in records:
        # Tuned runs (docs/tuning.md) pair naive with naive and best with best.
        role = rec.tuning.role if rec.tuning is not None else None
        if role == "finalist":
            continue
        label = rec.precision if role is None else f"{rec.precision if role == 'naive' else 'tuned'} ({role})"
        key = (rec.model, rec.batch_size, label)
        row = rows.setdefault(key, SeedRow(rec.model, rec.batch_size, label, None))
        if rec.device.type == "cpu":
            row.cpu = rec
        else:
            label = rec.device.label
            row.accelerators[label] = rec
            if label not in accel_labels:
                accel_labels.append(label)
    for row in rows.values():
        cpu = row.cpu
        if cpu is None or not cpu.ok:
            continue
        for label, acc in row.accelerators.items():
            if acc.ok and acc.user_samples:
                if intervals:
                    r, lo, hi = ratio_ci(cpu.user_samples, acc.user_samples)
                else:
                    r = statistics.median(cpu.user_samples) / statistics.median(acc.user_samples)
                    lo = hi = math.nan
                row.speedups[label] = Speedup(r, lo, hi)
    return list(rows.values()), accel_labels


def _accel_header(label: str, records: Sequence[InferenceRecord]) -> str:
    names = {r.device.name for r in records if r.device.label == label}
    name = next(iter(names)) if len(names) == 1 else label
    return f"GPU {label} ({name})" if label.startswith("cuda") else f"{label} ({name})"


def seed_grid(records: Sequence[InferenceRecord]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of seed 000's table, shared by the terminal, Markdown and HTML renderers.

    Columns: model | batch | precision | CPU | (each accelerator end to end | its speedup with
    the 95% interval), or ``GPU: no GPU found`` when there is none.
    """
    rows, accels = seed_rows(records)
    head = ["Model", "Batch", "Precision", "CPU"]
    if not accels:
        head += ["GPU", "Speedup"]
    for label in accels:
        head += [_accel_header(label, records) + " end to end", f"Speedup {label} [95% CI]"]
    body: list[list[str]] = []
    for row in rows:
        cells = [row.model, str(row.batch_size), row.precision, _cell(row.cpu)]
        if not accels:
            cells += ["no GPU found", "-"]
        for label in accels:
            sp = row.speedups.get(label)
            cells += [_cell(row.accelerators.get(label)), sp.text() if sp else "-"]
        body.append(cells)
    return head, body


def seed_table(records: Sequence[InferenceRecord], title: str | None = None) -> Table:
    """The answer: model | batch | CPU | each accelerator | speedup [95% CI]."""
    head, body = seed_grid(records)
    keep = [i for i in range(len(head)) if i != 2 or any(cells[2] != "fp32" for cells in body)]  # precision: when not all fp32
    table = new_table(title or "Inference time per batch (median)",
                      [(head[i], "name" if i == 0 else "text" if i == 2 else "num") for i in keep])
    for cells in body:
        table.add_row(*[cells[i] for i in keep])
    return table


def seed_table_markdown(records: Sequence[InferenceRecord]) -> str:
    """The same table as Markdown, for README files and results documents."""
    head, body = seed_grid(records)
    from devicebench.reports.escape import md_cell

    lines = ["| " + " | ".join(md_cell(h) for h in head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(md_cell(c) for c in cells) + " |" for cells in body]
    return "\n".join(lines)


def _mem(record: InferenceRecord) -> str:
    mem = record.memory
    if mem is None:
        return "-"
    parts = []
    if mem.rss_peak_mb is not None:
        parts.append(f"RSS {mem.rss_peak_mb:.0f} MiB")
    if mem.device_allocated_peak_mb is not None:
        parts.append(f"dev {mem.device_allocated_peak_mb:.0f}/{mem.device_reserved_peak_mb or 0:.0f} MiB")
    return ", ".join(parts) or "-"


def latency_cells(r: InferenceRecord) -> list[str]:
    """The statistics of one record as text, each with its unit: median [95% CI], p90 / p99,
    IQR (% of the median), n, items/s, end-to-end median, first call. Shared by every detail table."""
    lat, e2e, cold = r.latency_ms, r.e2e_latency_ms, r.cold_start
    p9x = "-"
    if lat:
        scale, unit = _unit(lat.p90)
        p9x = f"{fmt_num(lat.p90 / scale)} / {fmt_num(lat.p99 / scale)} {unit}"
    return [
        fmt_ci_ms(lat.median, *lat.ci95) if lat else "-",
        p9x,
        f"{lat.iqr / lat.median:.0%}" if lat and lat.median else "-",
        str(lat.n) if lat else "-",
        f"{r.throughput_per_s:,.1f}" if r.throughput_per_s else "-",
        fmt_ms(e2e.median) if e2e else ("= compute" if r.device.type == "cpu" and lat else "-"),
        fmt_ms(cold.first_inference_ms) if cold is not None else "-",
    ]


#: What the detail table's abbreviations mean (its caption, and the report's).
DETAIL_LEGEND = (
    "Thr = CPU threads; n = timed calls; IQR = interquartile range as a share of the median; "
    "compute = input already on the device; E2E = host tensor in, answer back on the host "
    "(= compute on the CPU); First call = the first call after the model was built (cold start)."
)


def _status(r: InferenceRecord, *, message: bool) -> str:
    status = r.status
    if not r.ok and message and r.message:
        status += f": {r.message.splitlines()[0][:60]}"
    if r.latency_ms is not None and r.latency_ms.flag:
        status += f" ({r.latency_ms.flag})"  # noisy, or few samples
    return status


def _config_cell(r: InferenceRecord) -> str:
    """What a tuned record ran (``ort fp32 t1 (best)``), or its precision."""
    if r.tuning is not None and r.tuning.candidate:
        return f"{r.tuning.candidate} ({r.tuning.role})"
    return r.precision


def inference_table(records: Sequence[InferenceRecord], title: str | None = None) -> Table:
    """The compact table every inference command prints (fits 80 columns): model, device, batch,
    median [95% CI], items/s, status; a configuration column only when precisions or tuned
    configurations differ. The full detail is :func:`detail_table` (``--wide``)."""
    configs = {_config_cell(r) for r in records}
    show_config = len(configs) > 1 or configs - {"fp32"}
    columns = [("Model", "name"), ("Device", "name"), ("Batch", "num")]
    if show_config:
        columns.append(("Configuration", "text"))
    columns += [("Median [95% CI]", "num"), ("Items/s", "num"), ("Status", "text")]
    table = new_table(title or "Latency per batch: median and its 95% interval (--wide for every statistic)", columns)
    for r in records:
        lat = r.latency_ms
        cells = [r.model, r.device.label, str(r.batch_size)]
        if show_config:
            cells.append(_config_cell(r))
        cells += [fmt_ci_ms(lat.median, *lat.ci95) if lat else "-",
                  f"{r.throughput_per_s:,.1f}" if r.throughput_per_s else "-", _status(r, message=False)]
        table.add_row(*cells)
    return table


def detail_table(records: Sequence[InferenceRecord]) -> Table:
    """Every statistic of every configuration (compute-only and end-to-end apart); as wide as
    it needs (``--wide``), with its abbreviations explained in the caption."""
    table = new_table("Detail: latency per batch", [
        ("Model", "name"), ("Device", "name"), ("Batch", "num"), ("Configuration", "text"), ("Thr", "num"),
        ("Median [95% CI]", "num"), ("p90 / p99", "num"), ("IQR", "num"), ("n", "num"), ("Items/s", "num"),
        ("E2E median", "num"), ("First call", "num"), ("Peak memory", "text"), ("Status", "text"),
    ], caption=DETAIL_LEGEND)
    for r in records:
        table.add_row(
            r.model, r.device.label, str(r.batch_size), _config_cell(r), str(r.threads or "-"),
            *latency_cells(r),
            _mem(r),
            _status(r, message=True),
        )
    return table




def warnings_for(records: Sequence[InferenceRecord]) -> list[str]:
    """Human-readable warnings: failures, noisy results, random weights."""
    out: list[str] = []
    for r in records:
        where = f"{r.model} on {r.device.label} at batch {r.batch_size}"
        if not r.ok:
            first = r.message.splitlines()[0] if r.message else "no message"
            out.append(f"{where} {r.status}: {first}")
            continue
        busy = r.timing.other_cpu_load
        if busy is not None and busy > BUSY_CORES:
            out.append(
                f"{where}: other programs used {busy:.1f} cores' worth of CPU while it was measured; "
                "competing for the cores can make CPU results many times slower: re-run on a quiet machine"
            )
        if r.latency_ms is not None and r.latency_ms.few_samples:
            lat = r.latency_ms
            out.append(
                f"{where} has few samples ({lat.n}, stopped: {r.timing.stop_reason or '?'}): its interval "
                f"covers the median with {lat.ci_level:.0%} only, not 95%; raise the time cap or re-run"
            )
        elif r.latency_ms is not None and r.latency_ms.noisy:
            lat = r.latency_ms
            out.append(
                f"{where} is noisy: IQR {lat.iqr / lat.median:.0%} of the median, 95% CI "
                f"+/-{lat.rel_ci:.1%} over {lat.n} samples; close other programs and re-run"
            )
    return out


def devices_table(env: Environment, transfers: Sequence[TransferProbe] = ()) -> Table:
    """What ``devicebench devices`` shows; ``transfers``: the copy speeds measured per device."""
    copies = {t.device: t.text() for t in transfers}
    table = new_table("Devices found", [("Device", "name"), ("Name", "text"), ("Details", "text")])
    cpu = env.cpu
    cores = f"{cpu.physical_cores} physical / {cpu.logical_cores} logical cores"
    if cpu.affinity_cores and cpu.affinity_cores != cpu.logical_cores:
        cores += f" ({cpu.affinity_cores} usable here)"
    flags = ", ".join(cpu.flags) or "none detected"
    table.add_row(
        "cpu", cpu.model,
        f"{cpu.arch}, {cores}, {cpu.memory_total_gb:.1f} GiB RAM\nISA: {flags}\n"
        f"torch capability: {cpu.torch_capability or '?'}, torch threads: {env.torch_threads}"
        + (f"\nhost-device copies: {copies['cpu']}" if "cpu" in copies else ""),
    )
    for acc in env.accelerators:
        bits = []
        if acc.memory_total_gb is not None:
            bits.append(f"{acc.memory_total_gb:.1f} GiB")
        if acc.compute_capability:
            bits.append(f"compute capability {acc.compute_capability}")
        if acc.multiprocessors:
            bits.append(f"{acc.multiprocessors} SMs")
        if acc.driver:
            bits.append(f"driver {acc.driver}")
        if acc.runtime:
            bits.append(acc.runtime)
        details = ", ".join(bits)
        if acc.device in copies:
            details += f"\ncopies: {copies[acc.device]}"
        table.add_row(acc.device, acc.name, details)
    if not env.accelerators:
        table.add_row("-", "no accelerator found", f"torch {env.torch} sees no CUDA, ROCm, MPS or XPU device")
    return table


def history_table(runs: Sequence[RunInfo], results: dict[str, str] | None = None) -> Table:
    """Stored runs, newest first: id (never cut: it is typed again), start, status, and a
    one-line result per run (``results``, by run id) above the command it ran (and its host,
    when the runs come from several)."""
    results = results or {}
    several_hosts = len({run.hostname for run in runs}) > 1
    table = new_table("Runs (newest first)", [("Run", "name"), ("Started (UTC)", "text"), ("Status", "text"),
                                              ("Result / command", "text")])
    for run in runs:
        started = run.started_at.replace("+00:00", "").replace("T", " ")[:16]
        command = "$ " + run.command + (f" (on {run.hostname})" if several_hosts and run.hostname else "")
        result = results.get(run.run_id, f"{run.n_records} record(s)")
        table.add_row(run.run_id, started, run.status, f"{result}\n[dim]{escape(command)}[/]")
    return table


def llm_models_table(entries: Sequence[Any]) -> Table:
    """``devicebench models``: the LLM shapes of ``devicebench llm`` (name never cut)."""
    table = new_table("Language models (devicebench llm)", [("Name", "name"), ("Context", "num"),
                                                            ("Description", "text")])
    for entry in entries:
        table.add_row(entry.name, str(entry.max_context), escape(entry.description))
    return table


def models_table(entries: Sequence[Any]) -> Table:
    """``devicebench models``: the registry's entries (name never cut: it is what one types)."""
    table = new_table("Registered models", [("Name", "name"), ("Task, input", "text"), ("Default batches", "text"),
                                            ("Description", "text")])
    for entry in entries:
        shape = "x".join(map(str, entry.input.shapes(1)[0]))
        task = entry.task.removesuffix("-classification").removesuffix("-embedding")
        table.add_row(entry.name, f"{task} {shape}", ", ".join(map(str, entry.default_batch_sizes)),
                      escape(entry.description))
    return table
