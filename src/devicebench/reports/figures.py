"""Figures as inline SVG strings (matplotlib's SVG backend; no files, no network).

Text, axes and ticks are drawn in ``currentColor``, so a figure takes the page's text colour
and reads in light and dark themes alike; the background is transparent. Output is
deterministic (fixed hash salt, no date) so that the same records give the same report.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import Any

from devicebench.reports.summary import Crossover, user_throughput, variant_text
from devicebench.results.records import InferenceRecord, TrainingRecord

__all__ = ["have_matplotlib", "latency_figure", "throughput_figure", "training_figure", "dataset_words",
           "draws_crossover"]

#: Drawn in this colour, then rewritten to ``currentColor`` in the SVG text.
_FG = "#010101"
#: Colour-blind-friendly series colours (Okabe-Ito), readable on white and on dark grey.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")


def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _mpl() -> Any:
    # The object-oriented API only: no pyplot, so no global backend or figure state changes.
    import matplotlib

    return matplotlib


def _subplots(figsize: tuple[float, float]) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots()


_RC = {
    "svg.fonttype": "none",
    "svg.hashsalt": "devicebench",
    "font.size": 9,
    "text.color": _FG,
    "axes.edgecolor": _FG,
    "axes.labelcolor": _FG,
    "xtick.color": _FG,
    "ytick.color": _FG,
    "axes.facecolor": "none",
    "figure.facecolor": "none",
    "savefig.facecolor": "none",
    "legend.frameon": False,
    "axes.grid": True,
    "grid.color": "#888888",
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def _to_svg(fig: Any, title: str) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": "devicebench"}, bbox_inches="tight")
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]  # drop the XML declaration and DOCTYPE: it goes inline
    svg = svg.replace(_FG, "currentColor")
    svg = re.sub(r'<svg ([^>]*?)width="[^"]*" height="[^"]*"',
                 lambda m: f'<svg {m.group(1)}role="img" aria-label="{_esc(title)}" class="fig"', svg, count=1)
    return svg


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _device_colors(labels: Sequence[str]) -> dict[str, str]:
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}


def latency_figure(records: Sequence[InferenceRecord], model: str) -> str | None:
    """Box plots of every raw latency sample of one model, one box per device and batch size.

    ``None`` when no record of the model has samples.
    """
    mpl = _mpl()
    recs = [r for r in records if r.model == model and r.ok and r.user_samples]
    if not recs:
        return None
    devices = list(dict.fromkeys(r.device.label for r in recs))
    colors = _device_colors(devices)
    recs.sort(key=lambda r: (r.batch_size, r.precision, devices.index(r.device.label)))
    with mpl.rc_context(_RC):
        fig, ax = _subplots((7.0, 0.45 * len(recs) + 1.3))
        data = [r.user_samples for r in recs]
        labels = [f"{r.device.label} b{r.batch_size} {r.precision}"
                  + (f" {variant_text(r)}" if variant_text(r) else "") for r in recs]
        # matplotlib >= 3.10 names it orientation; older ones only know vert.
        major, minor = (int(x) for x in mpl.__version__.split(".")[:2])
        orient = {"orientation": "horizontal"} if (major, minor) >= (3, 10) else {"vert": False}
        box = ax.boxplot(data, **orient, widths=0.6, patch_artist=True, showfliers=True,
                         flierprops={"markersize": 2, "markeredgecolor": "#888888"},
                         medianprops={"color": _FG, "linewidth": 1.5},
                         whiskerprops={"color": _FG}, capprops={"color": _FG})
        for patch, r in zip(box["boxes"], recs):
            patch.set_facecolor(colors[r.device.label])
            patch.set_alpha(0.75)
            patch.set_edgecolor(_FG)
        ax.set_yticks(range(1, len(recs) + 1), labels)
        ax.invert_yaxis()
        lo = min(min(d) for d in data)
        hi = max(max(d) for d in data)
        if lo > 0 and hi / lo > 20:
            ax.set_xscale("log")
        ax.set_xlabel("latency per batch (ms): end to end on accelerators, compute on the CPU")
        ax.set_title(f"{model}: latency distribution (every raw sample)", loc="left")
        return _to_svg(fig, f"{model} latency distribution")


def draws_crossover(model: str, crossings: Sequence[Crossover]) -> bool:
    """Whether :func:`throughput_figure` draws a crossover line for ``model``."""
    return any(c.model == model and c.batch is not None and c.previous is not None for c in crossings)


def throughput_figure(records: Sequence[InferenceRecord], model: str, crossings: Sequence[Crossover] = ()) -> str | None:
    """Items per second against batch size, one line per device and precision, crossover marked.

    ``None`` when the model was measured at fewer than two batch sizes on every device.
    """
    mpl = _mpl()
    recs = [r for r in records if r.model == model and r.ok and user_throughput(r) and not variant_text(r)]
    series: dict[tuple[str, str], dict[int, float]] = {}
    for r in recs:
        series.setdefault((r.device.label, r.precision), {})[r.batch_size] = user_throughput(r)  # type: ignore[assignment]
    if not series or max(len(v) for v in series.values()) < 2:
        return None
    colors = _device_colors(list(dict.fromkeys(d for d, _ in series)))
    with mpl.rc_context(_RC):
        fig, ax = _subplots((6.0, 3.4))
        for (device, precision), points in series.items():
            xs = sorted(points)
            ax.plot(xs, [points[x] for x in xs], marker="o", color=colors[device],
                    linestyle="-" if precision == "fp32" else "--", label=f"{device} {precision}")
        for c in crossings:
            if c.model != model or c.batch is None or c.previous is None:
                continue
            ax.axvline(c.batch, color=_FG, linestyle=":", linewidth=1,
                       label=f"crossover ({c.accelerator}): between b{c.previous} and b{c.batch}")
        from matplotlib.ticker import FuncFormatter, NullFormatter

        ax.set_xscale("log", base=2)
        values = [v for points in series.values() for v in points.values()]
        if max(values) / min(values) > 20:
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}" if v >= 1 else f"{v:.2g}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
        else:
            # Linear, from zero: ticks as plain numbers with as many digits as their step needs
            # (a narrow range must not label every tick "14").
            ax.set_ylim(bottom=0, top=max(values) * 1.1)
            ax.ticklabel_format(axis="y", style="plain", useOffset=False)
        batches = sorted({b for points in series.values() for b in points})
        ax.set_xticks(batches, [str(b) for b in batches])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("batch size (items per call)")
        ax.set_ylabel("throughput (items/s; end to end on accelerators)")
        ax.set_title(f"{model}: throughput against batch size", loc="left")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
        return _to_svg(fig, f"{model} throughput against batch size")


def dataset_words(record: TrainingRecord) -> str:
    """How a figure or heading names a training record's data: ``synthetic data`` for the
    generated set (whatever its layout), else its layout and class count."""
    ds = record.dataset or {}
    if not ds:
        return "data not recorded"
    n = ds.get("classes", "?")
    if ds.get("synthetic") or "synthetic" in str(ds.get("path", "")).lower():
        return f"synthetic data, {n} classes"
    return f"{ds.get('layout', 'dataset')}, {n} classes"


def training_figure(records: Sequence[TrainingRecord], metric: str) -> str | None:
    """Figure 1 (``metric="loss"``) or Figure 2 (``"accuracy"``): two panels, against the
    epoch (do the devices learn the same?) and against wall-clock time since training started
    (how much sooner does the faster device get there?). One colour per device; training
    solid, validation dashed; the target accuracy dotted, only when one was set. The legend
    sits below the panels, outside the data. ``None`` when no record has epochs."""
    mpl = _mpl()
    recs = [t for t in records if t.epochs]
    if not recs:
        return None
    devices = list(dict.fromkeys(t.device.label for t in recs))
    colors = _device_colors(devices)
    several_models = len({t.model for t in recs}) > 1
    with mpl.rc_context(_RC):
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator, PercentFormatter

        fig = Figure(figsize=(8.0, 3.4))
        by_epoch, by_time = fig.subplots(1, 2, sharey=True)
        for t in recs:
            label = f"{t.model} {t.device.label}" if several_models else t.device.label
            if metric == "loss":
                train = [e.train_loss for e in t.epochs]
                val = [e.val_loss for e in t.epochs]
            else:
                train = [e.train_acc for e in t.epochs]
                val = [e.val_top1 for e in t.epochs]
            for ax, xs in ((by_epoch, [e.epoch for e in t.epochs]), (by_time, [e.wall_s for e in t.epochs])):
                ax.plot(xs, train, marker="o", markersize=3, color=colors[t.device.label],
                        label=f"{label} training" if ax is by_epoch else None)
                pts = [(x, v) for x, v in zip(xs, val) if v is not None]
                if pts:
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], linestyle="--", marker="s", markersize=3,
                            color=colors[t.device.label], label=f"{label} validation" if ax is by_epoch else None)
        targets = sorted({t.target_acc for t in recs if t.target_acc is not None})
        if metric != "loss":
            for target in targets:
                for ax in (by_epoch, by_time):
                    ax.axhline(target, color=_FG, linestyle=":", linewidth=1,
                               label=f"target {target:.0%}" if ax is by_epoch else None)
            by_epoch.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        by_epoch.xaxis.set_major_locator(MaxNLocator(integer=True))
        by_epoch.set_xlabel("epoch")
        by_time.set_xlabel("wall-clock time since training started (s)")
        by_epoch.set_ylabel("loss (cross-entropy)" if metric == "loss" else "top-1 accuracy (%)")
        what = "loss" if metric == "loss" else "accuracy"
        number = 1 if metric == "loss" else 2
        fig.suptitle(f"Figure {number}: {what} per device ({dataset_words(recs[0])})", x=0.02, ha="left")
        by_epoch.set_title("against epochs", loc="left", fontsize=9)
        by_time.set_title("against wall-clock time", loc="left", fontsize=9)
        handles, labels = by_epoch.get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, -0.02), ncol=min(4, len(labels)),
                   fontsize=8)
        fig.subplots_adjust(bottom=0.22 + 0.06 * ((len(labels) - 1) // 4), wspace=0.08)
        return _to_svg(fig, f"Figure {number} {what} against epoch and wall-clock time")


def sustained_figure(records: Sequence[InferenceRecord]) -> str | None:
    """Throughput over time in sustained mode, one line per configuration; the GPU's SM clock
    (dashed) and temperature (dotted) on a second axis where NVML could read them."""
    mpl = _mpl()
    runs = [(r, r.sustained) for r in records if r.sustained is not None and r.sustained.windows]
    if not runs:
        return None
    with mpl.rc_context(_RC):
        fig, ax = _subplots((7.0, 3.6))
        right = None
        for i, (r, run) in enumerate(runs):
            color = PALETTE[i % len(PALETTE)]
            wins = run.windows
            xs = [w.t_end_s for w in wins]
            ax.plot(xs, [w.items_per_s for w in wins], marker="o", markersize=3, color=color,
                    label=f"{r.device.label} b{r.batch_size} items/s")
            clocks = [w.sm_clock_mhz for w in wins]
            temps = [w.temperature_c for w in wins]
            if any(c is not None for c in clocks) or any(t is not None for t in temps):
                right = right or ax.twinx()
                if any(c is not None for c in clocks):
                    right.plot(xs, clocks, linestyle="--", color=color, label=f"{r.device.label} SM clock MHz")
                if any(t is not None for t in temps):
                    right.plot(xs, temps, linestyle=":", color=color, label=f"{r.device.label} temperature C")
        ax.set_xlabel("time since the sustained run started (s)")
        ax.set_ylabel("items per second (compute)")
        ax.set_ylim(bottom=0)
        ax.set_title("Sustained throughput over time", loc="left")
        handles, labels = ax.get_legend_handles_labels()
        if right is not None:
            right.set_ylabel("SM clock MHz / temperature C")
            h2, l2 = right.get_legend_handles_labels()
            handles, labels = handles + h2, labels + l2
        ax.legend(handles, labels, fontsize=7, loc="upper left", bbox_to_anchor=(1.08 if right is not None else 1.01, 1.0))
        return _to_svg(fig, "Sustained throughput over time")
