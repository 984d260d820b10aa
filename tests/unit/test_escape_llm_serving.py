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
