"""Every file a user hands us is hostile (issue 12): results files and reports.

A results file with a string where a number belongs is one UserError naming the field; a
value that reaches HTML, Markdown or CSV is escaped for that format whatever it holds.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from report_fixtures import fixed_run, inference

from devicebench.errors import UserError
from devicebench.reports.export import report_csv, report_markdown
from devicebench.reports.html import render_html
from devicebench.results.jsonio import read_json, run_document
from devicebench.results.records import RunInfo

PAYLOAD = "<img src=x onerror=alert(1)>"


def _doc() -> dict:
    return run_document(RunInfo(run_id="r", command="test"), [inference("resnet50", "cpu", 1, 50.0),
                                                               inference("resnet50", "cuda:0", 1, 5.0)])


@pytest.mark.parametrize("field, value", [
    (("latency_ms", "n"), PAYLOAD), (("latency_ms", "median"), "12"), (("batch_size",), "1"),
    (("threads",), 1.5), (("device", "index"), "0"), (("samples_ms",), ["1", 2]), (("status",), 3),
    (("memory", "rss_peak_mb"), {"a": 1}), (("input_shape",), [[1, "x"]]),
])
def test_a_value_of_the_wrong_type_is_one_error_naming_the_field(tmp_path: Path, field: tuple[str, ...],
                                                                 value: object) -> None:
    doc = _doc()
    target = doc["records"][1]
    for key in field[:-1]:
        if target.get(key) is None:
            target[key] = {}
        target = target[key]
    target[field[-1]] = value
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(UserError) as info:
        read_json(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    assert "records[1]." + ".".join(field) in message, message


def test_report_of_a_results_file_with_markup_in_a_number_field_has_no_live_tag(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    doc = _doc()
    doc["records"][0]["latency_ms"]["n"] = PAYLOAD
    path = tmp_path / "evil.json"
    path.write_text(json.dumps(doc))
    out = tmp_path / "r.html"
    proc = run_cli("report", str(path), "--html", str(out))
    assert proc.returncode == 2 and "latency_ms.n" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()


def _hostile_run() -> tuple[RunInfo, list]:
    run, records = fixed_run()
    run.run_id = "<script>alert(1)</script>"
    for r in records:
        r.model = PAYLOAD + "|=cmd|' /C calc'!A0"
        r.precision = "<b>fp32</b>"
        r.device.name = "=1+2"
        r.message = "<svg onload=alert(1)>"
    return run, records


def test_html_escapes_every_value() -> None:
    run, records = _hostile_run()
    page = render_html(run, records, title=None)
    assert "<img" not in page and "<script>alert" not in page and "<b>fp32" not in page and "<svg onload" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_markdown_passes_no_raw_html_and_keeps_its_table_shape() -> None:
    run, records = _hostile_run()
    text = report_markdown(run, records)
    assert "<img" not in text and "<script" not in text and "<b>" not in text
    for line in text.splitlines():
        if line.startswith("| ") and "&lt;img" in line:
            header = next(h for h in text.splitlines() if h.startswith("| ") and h.count("|") > 2)
            # A | inside a value is escaped: the row has as many cells as its table's header.
            assert line.count("|") - line.count("\\|") >= 3 and header


def test_csv_cells_that_a_spreadsheet_would_run_are_quoted() -> None:
    _, records = _hostile_run()
    rows = list(csv.reader(io.StringIO(report_csv(records))))
    cells = [c for row in rows[1:] for c in row]
    assert cells, rows
    assert not any(c.startswith(("=", "+", "@", "\t", "\r")) for c in cells)
    assert "'=1+2" in cells
    # Numbers are not quoted, even negative ones.
    numeric = [c for c in cells if c.lstrip("-").replace(".", "", 1).isdigit()]
    assert numeric and not any(c.startswith("'") and c[1:].lstrip("-").replace(".", "", 1).isdigit() for c in cells)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=20))
def test_any_text_in_any_name_renders_escaped(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    import devicebench.reports.html as html_report

    monkeypatch.setattr(html_report, "have_matplotlib", lambda: False)  # the tables, not the figures (slow)
    run, records = fixed_run()
    for r in records:
        r.model = text + PAYLOAD
        r.precision = text
    page = render_html(run, records)
    assert "<img" not in page
    assert "<img" not in report_markdown(run, records)
    for row in list(csv.reader(io.StringIO(report_csv(records))))[1:]:
        assert not any(c.startswith(("=", "+", "@", "\t", "\r")) or (c.startswith("-") and not _number(c)) for c in row)


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_training_records_are_checked_too(tmp_path: Path) -> None:
    from report_fixtures import training

    from devicebench.results.loading import load_run

    doc = _doc()
    good = training().to_dict()
    doc["training"] = [good]
    path = tmp_path / "t.json"
    path.write_text(json.dumps(doc))
    assert len(load_run(str(path), None)[2]) == 1  # a genuine record reads
    bad = json.loads(json.dumps(good))
    bad["epochs"][1]["epoch_s"] = PAYLOAD
    doc["training"] = [good, bad]
    path.write_text(json.dumps(doc))
    with pytest.raises(UserError) as info:
        load_run(str(path), None)
    assert "training[1].epochs[1].epoch_s" in str(info.value) and "\n" not in str(info.value)
