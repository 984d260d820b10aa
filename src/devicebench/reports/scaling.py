"""The scaling of a data-parallel training run over one process, as a table. Pure functions."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from devicebench.results.records import TrainingRecord

__all__ = ["scaling_table", "scaling_note"]


def scaling_table(records: Sequence[TrainingRecord]) -> Table | None:
    """One row per N-process record that carries ``settings["scaling"]``; None without any."""
    rows = [r for r in records if isinstance(r.settings.get("scaling"), dict)]
    if not rows:
        return None
    table = Table(title="Data-parallel scaling (DDP) over one process, median epoch samples/s",
                  title_justify="left")
    for col in ("Device", "Processes", "Backend", "Global batch", "Threads/rank", "1 process", "N processes",
                "Speedup", "Efficiency"):
        table.add_column(col, justify="right")
    for r in rows:
        s, sc = r.settings, r.settings["scaling"]
        table.add_row(r.device.type, str(sc["nproc"]), str(s.get("backend", "-")),
                      f"{s.get('global_batch_size', '-')} ({sc['nproc']} x {s.get('per_rank_batch_size', r.batch_size)})",
                      str(s.get("threads_per_rank", "-")),
                      f"{sc['baseline_samples_per_s']:.0f}/s", f"{sc['samples_per_s']:.0f}/s",
                      f"{sc['speedup']:.2f}x", f"{100 * sc['efficiency']:.0f}%")
    table.caption = "efficiency = throughput(N) / (N x throughput(1)); 100% is linear scaling"
    return table


def scaling_note(record: TrainingRecord, cores: int) -> str | None:
    """A plain word on what to expect from a CPU run: N gloo ranks share the cores that one
    process uses alone, so they cannot do much more work than it; and, when the measured
    speedup says otherwise, why."""
    if record.device.type != "cpu" or int(record.settings.get("nproc", 1)) < 2:
        return None
    n = int(record.settings["nproc"])
    note = (f"note: on the CPU the {n} gloo processes ({record.settings.get('threads_per_rank', '?')} thread(s) "
            f"each) share the {cores} core(s) that one process can use alone: they cannot beat one process by much "
            f"(and they pay for the gradient all-reduce), so a speedup near 1x (efficiency near {100 / n:.0f}%) is "
            "what a model that uses its threads well gets. DDP pays off with one GPU per process.")
    scaling = record.settings.get("scaling")
    if isinstance(scaling, dict) and scaling.get("speedup", 0) > 1.3:
        threads = scaling.get("baseline_threads")
        note += (f" Here the {n} processes were {scaling['speedup']:.1f}x faster: one process did not gain from "
                 f"its {threads if threads else 'default'} thread(s) (a model too small for intra-op threads, "
                 "or a busy machine); `--threads 1` compares one core with one core per process.")
    return note
