"""Looking back at stored runs: the one-line result ``history`` shows per run, and the status
a reader should see (a run whose every configuration failed answered nothing). Pure functions."""

from __future__ import annotations

from collections.abc import Sequence

from devicebench.reports.tables import fmt_ms, seed_rows
from devicebench.reports.training import fmt_pct, training_speedups
from devicebench.results.records import InferenceRecord, RunInfo, TrainingRecord

__all__ = ["run_result", "run_status"]


def run_status(run: RunInfo, records: Sequence[InferenceRecord], training: Sequence[TrainingRecord]) -> str:
    """The stored status, except that a finished run whose every configuration failed reads
    ``failed`` (runs stored before that rule said ``complete``)."""
    kept = [*records, *training]
    if run.status == "complete" and kept and not any(r.ok for r in kept):
        return "failed"
    return run.status


def _first_line(text: str | None) -> str:
    return text.splitlines()[0] if text else "no message"


def run_result(records: Sequence[InferenceRecord], training: Sequence[TrainingRecord]) -> str:
    """One line that says what a run found: the first answer (a CPU median and each
    accelerator's speedup), how many more, and how many failed with the first cause."""
    parts: list[str] = []
    done = [r for r in records if r.ok]
    failed = [r for r in records if not r.ok]
    if done:
        rows, _ = seed_rows(done, intervals=False)  # the point ratio: history stays numpy-free
        row = rows[0]
        base = row.cpu or next(iter(row.accelerators.values()), None)
        if base is not None and base.user_latency is not None:
            text = f"{row.model} b{row.batch_size} {base.device.label} {fmt_ms(base.user_latency.median)}"
            for label, sp in row.speedups.items():
                text += f", {label} {sp.ratio:.2f}x {'faster' if sp.ratio >= 1 else 'as fast'}"
            parts.append(text)
        more = len(done) - 1 - len(row.speedups)
        if more > 0:
            parts.append(f"{more} more configuration(s)")
    trained = [t for t in training if t.epochs]
    if trained:
        t = trained[0]
        last = t.epochs[-1]
        text = f"{t.model} trained {len(t.epochs)} epoch(s) on {t.device.label}"
        if last.val_top1 is not None:
            text += f", val top-1 {fmt_pct(last.val_top1)}"
        speedups = [s for s in training_speedups(training) if s.epoch == 1]
        for s in speedups:
            text += f"; {s.device} {s.ratio:.1f}x faster per epoch"
        parts.append(text)
    failures = failed + [t for t in training if not t.ok]
    if failures:
        total = len(records) + len(training)
        first = failures[0]
        what = "all" if len(failures) == total else f"{len(failures)} of"
        parts.append(f"{what} {total} failed: {first.status} ({_first_line(first.message)[:80]})")
    return "; ".join(parts) or "no records"
