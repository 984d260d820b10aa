"""The LLM and serving reports escape what a user's file may name: no raw HTML in Markdown,
no formula in a llama-bench CSV cell (the same rules as reports/escape.py's other callers)."""

from __future__ import annotations

from devicebench.reports.escape import csv_cell, md_cell
from devicebench.reports.llm import _csv, _md


def test_llm_markdown_cells_carry_no_raw_html_and_no_column_break() -> None:
    text = _md(["Model"], [["<img src=x onerror=alert(1)>|x"]])
    assert "<img" not in text and "&lt;img" in text
    assert text.splitlines()[-1].count(" | ") == 0  # the | inside the name is escaped: one column


def test_llama_bench_csv_cells_are_no_formulas() -> None:
    assert _csv("=HYPERLINK(\"http://x\")").startswith("'=")
    assert _csv(True) == "1" and _csv(3.5) == "3.5"
    assert csv_cell("-1+2") == "'-1+2" and md_cell("a|b") == "a\\|b"


def test_p99_curve_draws_two_trials_at_one_rate_one_stopped_early() -> None:
    """A failed confirmation runs at the search's own rate: one trial with a p99, one stopped
    early without (None). Sorting (rate, p99) pairs compared None with a float (TypeError,
    seen in tests/integration/test_serve_api.py once confirmations stepped down)."""
    import pytest

    pytest.importorskip("matplotlib")
    from devicebench.reports.serving import p99_curve_figure
    from devicebench.results.records import DeviceRef
    from devicebench.results.serving import ServingRecord

    trials = [{"rate": 4.0, "p99_ms": 300.0}, {"rate": 5.0, "p99_ms": None}, {"rate": 5.0, "p99_ms": 900.0},
              {"rate": 2.0, "p99_ms": 200.0}]
    record = ServingRecord(run_id="r", model="m", device=DeviceRef(type="cpu", index=None, name="CPU"), scenario="server",
                           status="ok", target_ms=1000.0, trials=trials, max_rate=4.0)
    svg = p99_curve_figure([record])
    assert svg is not None and "<svg" in svg
