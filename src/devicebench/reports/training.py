"""Training results as tables: one per device, and the GPU/CPU speedup. Pure functions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.table import Table

from devicebench.reports.tables import fmt_num, new_table
from devicebench.results.records import TrainingRecord

__all__ = ["SpeedupRow", "epoch_table", "fmt_pct", "speedup_table", "training_speedups"]


def fmt_pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


#: What the epoch table's columns mean (its caption).
EPOCH_LEGEND = ("Data wait = share of the epoch spent waiting for the next batch (a starved device shows here); "
                "Wall = time since training started.")


def epoch_table(record: TrainingRecord, *, wide: bool = False) -> Table:
    """One row per epoch: losses, accuracies, times, throughput and the data-wait share (fits
    80 columns); ``wide`` adds validation top-5 and the data wait in seconds."""
    title = (f"{record.model} on {record.device.label} ({record.device.name}), batch {record.batch_size}, "
             f"{record.precision}: {record.status}")
    table = new_table(title, [("Epoch", "num"), ("Train loss", "num"), ("Train acc", "num"), ("Val loss", "num"),
                              ("Val top-1", "num")] + ([("Val top-5", "num")] if wide else [])
                      + [("Epoch time", "num"), ("Samples per s", "num"), ("Data wait", "num"), ("Wall", "num")])
    for e in record.epochs:
        wait = e.data_wait_s / e.epoch_s if e.epoch_s > 0 else 0.0
        cells = [str(e.epoch), f"{e.train_loss:.3f}", fmt_pct(e.train_acc),
                 "-" if e.val_loss is None else f"{e.val_loss:.3f}", fmt_pct(e.val_top1)]
        cells += [fmt_pct(e.val_top5)] if wide else []
        cells += [f"{fmt_num(e.epoch_s)} s", f"{e.samples_per_s:.0f}",
                  f"{e.data_wait_s:.2f} s ({100 * wait:.0f}%)" if wide else f"{100 * wait:.0f}%", f"{e.wall_s:.1f} s"]
        table.add_row(*cells)
    if record.target_acc is not None:
        reached = "not reached" if record.time_to_target_s is None else f"{record.time_to_target_s:.1f} s"
        table.caption = f"time to {fmt_pct(record.target_acc)} val top-1: {reached}. " + EPOCH_LEGEND
    else:
        table.caption = EPOCH_LEGEND
    return table


@dataclass
class SpeedupRow:
    """CPU time / accelerator time for one epoch (``epoch`` 0 means "to target")."""

    device: str
    epoch: int
    cpu_s: float
    other_s: float

    @property
    def ratio(self) -> float:
        return self.cpu_s / self.other_s if self.other_s > 0 else float("inf")


def training_speedups(records: Sequence[TrainingRecord]) -> list[SpeedupRow]:
    """Per-epoch and time-to-target speedups of every accelerator record over the CPU one."""
    cpu = next((r for r in records if r.device.type == "cpu" and r.epochs), None)
    if cpu is None:
        return []
    rows: list[SpeedupRow] = []
    for other in records:
        if other.device.type == "cpu" or not other.epochs:
            continue
        for a, b in zip(cpu.epochs, other.epochs):
            rows.append(SpeedupRow(other.device.label, a.epoch, a.epoch_s, b.epoch_s))
        if cpu.time_to_target_s and other.time_to_target_s:
            rows.append(SpeedupRow(other.device.label, 0, cpu.time_to_target_s, other.time_to_target_s))
    return rows


def speedup_table(records: Sequence[TrainingRecord]) -> Table | None:
    """The GPU/CPU speedup per epoch and to the target accuracy, or None with no pair."""
    rows = training_speedups(records)
    if not rows:
        return None
    table = new_table("Training speedup over the CPU (epoch time, CPU / device)",
                      [("Device", "name"), ("Epoch", "num"), ("CPU", "num"), ("Device time", "num"), ("Speedup", "num")])
    for row in rows:
        table.add_row(row.device, "to target" if row.epoch == 0 else str(row.epoch),
                      f"{row.cpu_s:.2f} s", f"{row.other_s:.2f} s", f"{row.ratio:.1f}x")
    return table
