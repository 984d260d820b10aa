"""The HTML report and its Markdown/CSV/JSON siblings, rendered from a fixed run built in code."""

from __future__ import annotations

import csv
import math
import io
import re

import numpy as np
import pytest
from report_fixtures import fixed_run, training

from devicebench.measure.parity import ParityResult
from devicebench.reports.cost import Prices, cost_per_million
from devicebench.reports.export import (
    CSV_COLUMNS,
    report_csv,
    report_json,
    report_markdown,
)
from devicebench.reports.html import render_html
from devicebench.reports.summary import crossovers, user_throughput

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def page() -> str:
    run, recs = fixed_run()
    return render_html(run, recs, [training("cpu"), training("cuda:0", epoch_s=2.0, reach=5.0)], tool_version="0.1.0")


def _ms(value: float) -> str:
    """The page's latency format, written out here: ms below 1 s, s from 1 s, three
    significant digits (trailing zeros kept: ``1.20 s``, ``120 ms``, ``50.0 ms``)."""
    value, unit = (value / 1000, "s") if value >= 1000 else (value, "ms")
    return f"{value:.{max(0, 2 - math.floor(math.log10(value)))}f} {unit}"


def test_seed_table_shows_medians_and_speedups_with_intervals(page: str) -> None:
    _, recs = fixed_run()
    table = page[page.index('id="seed-table"'):page.index("</table>", page.index('id="seed-table"'))]
    rows = [re.findall(r"<td[^>]*>([^<]*)</td>", row) for row in re.findall(r"<tr><td>.*?</tr>", table)]
    assert len(rows) == 4
    for row, cpu, gpu in zip(rows, recs[0::2], recs[1::2]):
        # Expected values from the raw samples with numpy: the CPU's compute samples, the
        # GPU's end-to-end ones (what a user waits for), never the GPU's compute-only samples.
        cpu_median, gpu_median = float(np.median(cpu.samples_ms)), float(np.median(gpu.e2e_samples_ms))
        assert row[:3] == [cpu.model, str(cpu.batch_size), "fp32"]
        assert row[3] == _ms(cpu_median) and row[4] == _ms(gpu_median), row
        speedup = re.fullmatch(r"(\d+\.\d\d)x \[(\d+\.\d\d)-(\d+\.\d\d)\]", row[5])
        assert speedup, row[5]
        ratio, lo, hi = (float(g) for g in speedup.groups())
        assert ratio == pytest.approx(round(cpu_median / gpu_median, 2), abs=0.006)
        assert lo <= ratio <= hi
        # 200 samples with 2% spread on each side: the 95% interval of the ratio is about
        # +/-0.5% wide (asymptotic median variance); it must be neither a point nor a guess.
        assert 0.002 * ratio <= hi - lo <= 0.03 * ratio, row[5]
    # Designed: the CPU wins at batch 1 (50 vs 60 ms), the GPU at batch 8 (300 vs 80 ms).
    assert rows[0][5].startswith("0.83x") and rows[1][5].startswith("3.7")


def test_figures_are_inline_svg_and_nothing_is_loaded(page: str) -> None:
    assert page.count("<svg") == 5  # 2 latency, 1 throughput (bert has one batch size), Figures 1 and 2
    assert "Figure 1: loss per device" in page and "Figure 2: accuracy per device" in page
    assert "resnet50: latency distribution" in page and "resnet50: throughput against batch size" in page
    assert "currentColor" in page and "prefers-color-scheme: dark" in page
    assert "<script" not in page.lower() and "<link" not in page.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and "url(http" not in page


def test_crossover_is_found_and_marked(page: str) -> None:
    _, recs = fixed_run()
    cross = {c.model: c for c in crossovers(recs)}
    assert cross["resnet50"].batch == 8 and cross["resnet50"].previous == 1
    assert cross["bert-base"].batch == 1 and cross["bert-base"].previous is None
    assert "cuda:0 overtakes the CPU between batch 1 and 8" in page
    assert "crossover (cuda:0)" in page  # the annotation inside the figure


def test_environment_energy_cost_memory_are_shown(page: str) -> None:
    assert "Test CPU 9000 @ 3.0GHz" in page and "NVIDIA H100 80GB HBM3" in page and "580.65" in page
    energy = page[page.index('id="energy-table"'):]
    assert "estimate-tdp (estimate)" in energy and "nvml+rapl" in energy
    _, recs = fixed_run()
    gpu32 = recs[5]
    expected = cost_per_million(user_throughput(gpu32), 4.00)  # H100 in the dated default table
    cost = page[page.index('id="cost-table"'):]
    assert f"${expected:,.4g}" in cost and "default-table" in cost
    memory = page[page.index('id="memory-table"'):]
    assert "812" in memory and "123.5" in memory and "160.0" in memory
    assert "How it was measured" in page and "fresh Python process" in page


def test_training_table_costs_and_estimated_energy(page: str) -> None:
    table = page[page.index('id="training-table"'):]
    # cuda:0: 2 s per epoch at 4 USD/h -> 0.002222 USD; to target 5 s -> 0.005556 USD.
    assert "$0.002222" in table and "$0.005556" in table
    assert "estimate-tdp" in table


def test_variant_and_parity_render_only_when_present() -> None:
    run, recs = fixed_run()
    plain = render_html(run, recs[:2])
    assert 'id="parity-table"' not in plain and "Variant" not in plain
    recs[1].variant = "torch.compile"  # type: ignore[attr-defined]
    recs[1].parity = ParityResult("fp32", True, max_abs_err=1.5e-4, max_rel_err=2e-5, min_cosine=0.99999,
                                  top1_agreement=1.0)
    page = render_html(run, recs[:2])
    assert "torch.compile" in page and 'id="parity-table"' in page and "max_abs_err=0.00015" in page


def test_no_training_no_figures_for_it() -> None:
    run, recs = fixed_run()
    page = render_html(run, recs)
    assert "Figure 1" not in page and 'id="training"' not in page


def test_user_prices_replace_the_default_table() -> None:
    run, recs = fixed_run()
    page = render_html(run, recs, prices=Prices(hourly={"cuda": 2.0, "cpu": 0.5}, use_defaults=False))
    cost = page[page.index('id="cost-table"'):]
    assert "default-table" not in cost
    expected = cost_per_million(user_throughput(recs[5]), 2.0)
    assert f"${expected:,.4g}" in cost


def test_csv_markdown_json_carry_the_same_figures() -> None:
    run, recs = fixed_run()
    rows = list(csv.DictReader(io.StringIO(report_csv(recs))))
    assert len(rows) == len(recs) and tuple(rows[0].keys()) == CSV_COLUMNS
    gpu8 = next(r for r in rows if r["device"] == "cuda:0" and r["batch_size"] == "8")
    ratio = np.median(recs[2].samples_ms) / np.median(recs[3].e2e_samples_ms)  # CPU / GPU end to end
    assert float(gpu8["speedup_vs_cpu"]) == pytest.approx(ratio, rel=1e-5)
    assert gpu8["energy_source"] == "nvml+rapl" and gpu8["price_source"] == "default-table"
    md = report_markdown(run, recs, [training("cpu")])
    assert "| resnet50 | 8 | fp32 |" in md and "## Energy" in md and "## Training" in md
    doc = report_json(run, recs, [training("cpu")])
    assert doc["report"]["crossovers"][0]["batch"] == 8
    assert {c["price_source"] for c in doc["report"]["cost"]} == {"default-table"}
    assert doc["training"][0]["model"] == "tinycnn" and len(doc["records"]) == len(recs)
