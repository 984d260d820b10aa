"""The training figures: Figure 1 loss and Figure 2 accuracy, per device and split.

Each figure has two panels: against the epoch (do the devices learn the same?) and against
wall-clock time (how much sooner does the faster device get there?). Pure functions: records
in, files out; matplotlib's non-interactive Agg backend, so no display is needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from devicebench.errors import UserError
from devicebench.results.records import TrainingRecord

__all__ = ["write_figures", "FORMATS"]

FORMATS = ("png", "svg")


def _label(record: TrainingRecord) -> str:
    nproc = int(record.settings.get("nproc", 1))
    ddp = f" x{nproc} DDP" if nproc > 1 else ""
    return f"{record.device.label}{ddp} ({record.precision})"


def _figure(records: Sequence[TrainingRecord], what: str):  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2), layout="constrained")
    by_epoch, by_time = fig.subplots(1, 2, sharey=True)
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
    if what == "loss":
        series = (("train_loss", "train", "-"), ("val_loss", "val", "--"))
        ylabel = "cross-entropy loss"
    else:
        series = (("train_acc", "train top-1", "-"), ("val_top1", "val top-1", "--"), ("val_top5", "val top-5", ":"))
        ylabel = "accuracy"
    for i, record in enumerate(records):
        colour = colours[i % len(colours)]
        for field, split, style in series:
            points = [(e.epoch, e.wall_s, getattr(e, field)) for e in record.epochs if getattr(e, field) is not None]
            if not points:
                continue
            epochs, walls, values = zip(*points)
            label = f"{_label(record)} {split}"
            by_epoch.plot(epochs, values, style, marker="o", color=colour, label=label)
            by_time.plot(walls, values, style, marker="o", color=colour, label=label)
    from devicebench.reports.figures import dataset_words

    first = records[0]
    title = "Figure 1: loss" if what == "loss" else "Figure 2: accuracy"
    fig.suptitle(f"{title} - {first.model}, {dataset_words(first)}, batch {first.batch_size}")
    by_epoch.set_xlabel("epoch")
    by_time.set_xlabel("wall-clock time since start (s)")
    by_epoch.set_ylabel(ylabel)
    by_epoch.set_title("against epochs")
    by_time.set_title("against time")
    if what != "loss":
        by_epoch.set_ylim(0, 1)
    from matplotlib.ticker import MaxNLocator

    by_epoch.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in (by_epoch, by_time):
        ax.grid(True, alpha=0.3)
    by_time.legend(fontsize="small", loc="best")
    return fig


def write_figures(records: Sequence[TrainingRecord], out_dir: str | Path) -> list[Path]:
    """Write ``figure1-loss`` and ``figure2-accuracy`` as PNG and SVG into ``out_dir``.

    Returns:
        The files written.

    Raises:
        UserError: no record has a finished epoch, or ``out_dir`` cannot be written.
    """
    usable = [r for r in records if r.epochs]
    if not usable:
        raise UserError("no finished epoch to plot")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {out}: {exc.strerror or exc}") from None
    written: list[Path] = []
    for name, what in (("figure1-loss", "loss"), ("figure2-accuracy", "accuracy")):
        fig = _figure(usable, what)
        for fmt in FORMATS:
            path = out / f"{name}.{fmt}"
            fig.savefig(path, dpi=120)
            written.append(path)
    return written
