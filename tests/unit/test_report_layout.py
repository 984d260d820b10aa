"""What the report draws and says: axes with units and distinct ticks, legends outside the
data, captions only for what is drawn, training against epoch and wall-clock time, headers
that count what the run holds, synthetic data called synthetic, no seed-document jargon."""

from __future__ import annotations

import re
import sys
from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")
sys.path.insert(0, str(Path(__file__).parent))

from report_fixtures import fixed_run, inference, training

from devicebench.reports.figures import (
    dataset_words,
    throughput_figure,
    training_figure,
)
from devicebench.reports.html import render_html


def _ticks(svg: str, axis: str) -> list[str]:
    chunks = svg.split(f'<g id="{axis}tick_')[1:]
    return [m.group(1).strip() for c in chunks if (m := re.search(r"<text[^>]*>([^<]*)</text>", c))]


def test_a_narrow_throughput_range_gets_distinct_ticks() -> None:
    recs = [inference("resnet50", "cpu", b, 1000 * b / (14.1 + 0.1 * i), seed=i) for i, b in enumerate((1, 8, 32))]
    svg = throughput_figure(recs, "resnet50")
    assert svg is not None
    ticks = [t for t in _ticks(svg, "y") if t]
    assert len(ticks) >= 3 and len(set(ticks)) == len(ticks), ticks
    assert "items/s" in svg and "batch size (items per call)" in svg


def test_training_figure_has_an_epoch_and_a_wall_clock_panel_one_colour_per_device() -> None:
    svg = training_figure([training("cpu"), training("cuda:0", epoch_s=2.0)], "accuracy")
    assert svg is not None
    assert "against epochs" in svg and "against wall-clock time" in svg
    assert "wall-clock time since training started (s)" in svg
    colours = set(re.findall(r"stroke: (#[0-9A-Fa-f]{6})", svg)) - {"#010101", "#888888"}
    assert {"#0072B2", "#E69F00"} <= {c.upper() if c.startswith("#") else c for c in colours} | colours


def test_synthetic_data_is_called_synthetic(tmp_path: Path) -> None:
    from devicebench.workloads.datasets import inspect_dataset, make_synthetic

    made = make_synthetic(tmp_path / "synth", classes=3, train_per_class=4, val_per_class=2)
    assert inspect_dataset(made, limit=1).summary["synthetic"] is True  # whatever the folder is called
    t = training("cpu")
    t.dataset = {"layout": "tiny-imagenet", "classes": 10, "synthetic": True, "path": "/x/tiny-synth"}
    assert dataset_words(t) == "synthetic data, 10 classes"
    svg = training_figure([t], "loss")
    assert svg is not None and "synthetic data" in svg and "tiny-imagenet" not in svg
    t.dataset = {"layout": "tiny-imagenet", "classes": 200, "path": "/data/tiny-imagenet-200.zip"}
    assert dataset_words(t) == "tiny-imagenet, 200 classes"


def test_captions_only_describe_what_is_drawn() -> None:
    run, recs = fixed_run()
    cpu_only = [r for r in recs if r.device.type == "cpu"]
    page = render_html(run, cpu_only, [replace(training("cpu"), target_acc=None, time_to_target_s=None)])
    assert "dotted line marks" not in page and "Dotted: the target" not in page
    page = render_html(run, recs, [training("cpu"), training("cuda:0", epoch_s=2.0)])
    assert "dotted line marks" in page and "Dotted: the target accuracy" in page


def test_header_counts_training_configurations_and_no_seed_jargon() -> None:
    run, recs = fixed_run()
    page = render_html(replace(run, n_records=2), [], [training("cpu"), training("cuda:0")])
    assert "2 training configurations" in page and "0 configuration" not in page
    page = render_html(run, recs, [training("cpu")])
    assert "8 inference configurations, 1 training configuration" in page
    assert not re.search(r"seed 0\d\d", page, re.IGNORECASE)
    assert "Thr = CPU threads" in page and "First call = the first call" in page
