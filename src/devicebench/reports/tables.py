"""Seed 000's table (model | CPU | GPU | speedup) and the detail behind it.

Rows are computed once as plain data (:class:`SeedRow`) and rendered as a rich table for the
terminal or as Markdown for documents; nothing here prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.table import Table

from devicebench.devices.sysinfo import Environment
from devicebench.devices.transfer import TransferProbe
from devicebench.measure.stats import ratio_ci
from devicebench.results.records import InferenceRecord, RunInfo

__all__ = [
    "SeedRow",
    "Speedup",
    "seed_rows",
    "seed_grid",
    "seed_table",
    "seed_table_markdown",
    "detail_table",
    "latency_cells",
    "devices_table",
    "history_table",
    "warnings_for",
    "fmt_ms",
]


def fmt_ms(value: float | None) -> str:
    """Milliseconds with 3 significant figures (``0.0412 ms``, ``12.3 ms``, ``207 ms``)."""
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:.0f} ms"
    if value >= 10:
        return f"{value:.1f} ms"
    if value >= 1:
        return f"{value:.2f} ms"
    return f"{value:.3g} ms"


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
    return fmt_ms(lat.median) + (" (noisy)" if lat.noisy else "")


def seed_rows(records: Sequence[InferenceRecord]) -> tuple[list[SeedRow], list[str]]:
    """Group records into seed-table rows; returns the rows and the accelerator labels seen.

    The speedup is CPU latency / accelerator latency (end to end: host tensor in, answer back
    on the host), the ratio of medians with a 95% bootstrap interval.
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
                r, lo, hi = ratio_ci(cpu.user_samples, acc.user_samples)
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
    """Seed 000's table: model | batch | CPU | each accelerator | speedup [95% CI]."""
    head, body = seed_grid(records)
    table = Table(title=title or "Inference time per batch (median)", title_justify="left")
    for i, name in enumerate(head):
        table.add_column(name, justify="left" if i in (0, 2) else "right")
    for cells in body:
        table.add_row(*cells)
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
    """The statistics of one record as text: median [95% CI], p90 / p99, IQR (% of the
    median), n, items/s, end-to-end median, first call (ms). Shared by every detail table."""
    lat, e2e, cold = r.latency_ms, r.e2e_latency_ms, r.cold_start
    return [
        f"{lat.median:.3g} [{lat.ci95[0]:.3g}-{lat.ci95[1]:.3g}]" if lat else "-",
        f"{lat.p90:.3g} / {lat.p99:.3g}" if lat else "-",
        f"{lat.iqr / lat.median:.0%}" if lat and lat.median else "-",
        str(lat.n) if lat else "-",
        f"{r.throughput_per_s:,.1f}" if r.throughput_per_s else "-",
        f"{e2e.median:.3g}" if e2e else ("= compute" if r.device.type == "cpu" and lat else "-"),
        f"{cold.first_inference_ms:.3g}" if cold is not None else "-",
    ]


def detail_table(records: Sequence[InferenceRecord]) -> Table:
    """Every statistic of every configuration (compute-only and end-to-end apart)."""
    table = Table(
        title="Detail: latency per batch in ms (compute = input already on the device; "
        "E2E = host tensor in, answer back on the host)",
        title_justify="left",
    )
    for name, justify in [
        ("Model", "left"), ("Device", "left"), ("Batch", "right"), ("Thr", "right"),
        ("Median [95% CI]", "right"), ("p90 / p99", "right"), ("IQR", "right"), ("n", "right"),
        ("Items/s", "right"), ("E2E median", "right"), ("First call", "right"),
        ("Peak memory", "left"), ("Status", "left"),
    ]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in records:
        lat = r.latency_ms
        status = r.status if r.ok else f"{r.status}: {r.message.splitlines()[0][:60] if r.message else ''}"
        if lat is not None and lat.noisy:
            status += " (noisy)"
        table.add_row(
            r.model, r.device.label, str(r.batch_size), str(r.threads or "-"),
            *latency_cells(r),
            _mem(r),
            status,
        )
    return table


#: Other processes using more than this many cores while a configuration is measured
#: trigger a "busy machine" warning.
BUSY_CORES = 0.25


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
        if r.latency_ms is not None and r.latency_ms.noisy:
            lat = r.latency_ms
            out.append(
                f"{where} is noisy: IQR {lat.iqr / lat.median:.0%} of the median, 95% CI "
                f"+/-{lat.rel_ci:.1%} over {lat.n} samples; close other programs and re-run"
            )
    return out


def devices_table(env: Environment, transfers: Sequence[TransferProbe] = ()) -> Table:
    """What ``devicebench devices`` shows; ``transfers``: the copy speeds measured per device."""
    copies = {t.device: t.text() for t in transfers}
    table = Table(title="Devices found", title_justify="left", show_header=True)
    table.add_column("Device")
    table.add_column("Name")
    table.add_column("Details")
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


def history_table(runs: Sequence[RunInfo]) -> Table:
    table = Table(title="Runs (newest first)", title_justify="left")
    for col in ("Run", "Started (UTC)", "Status", "Records", "Host", "Command"):
        table.add_column(col)
    for run in runs:
        table.add_row(run.run_id, run.started_at.replace("+00:00", ""), run.status,
                      str(run.n_records), run.hostname or "-", run.command)
    return table
