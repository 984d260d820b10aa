"""The report and compare commands end to end: a real (tiny) measurement, then every output."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from devicebench.measure.config import TimingPolicy


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``devicebench run`` with its suite swapped for a tiny model at two batch sizes (in this
    process; each configuration is still measured in its own worker), stored and as JSON."""
    import devicebench.run.inference as runner
    from devicebench import cli

    def tiny_suite(devices, *, quick=False, threads=None):  # type: ignore[no-untyped-def]
        return runner.plan_inference(["tinycnn-tiny"], devices, [1, 2], threads=threads,
                                     policy=TimingPolicy(warmup_iters=1, warmup_s=0.0, min_iters=3,
                                                         min_time_s=0.1, max_time_s=0.3))

    folder = tmp_path_factory.mktemp("measured")
    db, js = folder / "r.db", folder / "run.json"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner, "plan_suite", tiny_suite)
        assert cli.main(["run", "--quick", "--devices", "cpu", "--db", str(db), "--json", str(js)]) == 0
    return db, js


def test_run_ended_by_writing_its_report(measured: tuple[Path, Path]) -> None:
    db, _ = measured
    reports = list((db.parent / "reports").glob("devicebench-*.html"))
    assert len(reports) == 1
    page = reports[0].read_text()
    assert "tinycnn-tiny" in page and 'id="seed-table"' in page


def _main(capsys, *args: str):  # type: ignore[no-untyped-def]
    """The CLI in this process (the measurement itself ran in subprocesses): (code, out, err)."""
    from devicebench import cli

    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_report_writes_every_format(measured: tuple[Path, Path], capsys, tmp_path: Path) -> None:
    db, _ = measured
    out = tmp_path / "out"
    code, _, err = _main(capsys, "report", "--db", str(db), "--last", "--html", str(out / "r.html"), "--md", str(out / "r.md"),
                   "--csv", str(out / "r.csv"), "--json", str(out / "r.json"), "--price", "cpu=0.36")
    assert code == 0, err
    page = (out / "r.html").read_text()
    assert "tinycnn-tiny" in page and 'id="seed-table"' in page and page.count("<svg") >= 2
    assert "no GPU found" in page and "estimate-tdp" in page  # no RAPL readable here: labelled estimate
    rows = list(csv.DictReader(io.StringIO((out / "r.csv").read_text())))
    assert [r["batch_size"] for r in rows] == ["1", "2"] and all(r["price_source"] == "option" for r in rows)
    assert all(float(r["usd_per_million"]) > 0 and r["energy_source"] for r in rows)
    doc = json.loads((out / "r.json").read_text())
    assert doc["report"]["prices"]["hourly"] == {"cpu": 0.36} and len(doc["records"]) == 2
    energy = doc["records"][0]["energy"]
    # Measured only from a real counter; the TDP estimate is always labelled as not measured.
    assert energy["measured"] is (energy["source"] != "estimate-tdp"), energy
    assert energy["joules_per_item"] > 0
    assert "| tinycnn-tiny | 1 | fp32 |" in (out / "r.md").read_text()


def test_report_to_stdout_and_bad_input(measured: tuple[Path, Path], capsys, tmp_path: Path) -> None:
    db, js = measured
    code, out, _ = _main(capsys, "report", str(js))
    assert code == 0 and "# devicebench report" in out
    code, _, err = _main(capsys, "report", "--db", str(db), "nosuchrun", "--html", str(tmp_path / "x.html"))
    assert code == 2 and "no run 'nosuchrun'" in err and "Traceback" not in err
    code, _, err = _main(capsys, "report", "--db", str(db), "--price", "cuda", "--md", "-")
    assert code == 2 and "DEVICE=USD_PER_HOUR" in err.replace("\n", "")


def test_compare_two_json_files(measured: tuple[Path, Path], capsys, tmp_path: Path) -> None:
    db, js = measured
    doc = json.loads(js.read_text())
    # A second "machine": the same samples made 10% slower, on another CPU.
    for rec in doc["records"]:
        rec["samples_ms"] = [x * 1.1 for x in rec["samples_ms"]]
        rec["environment"]["cpu"]["model"] = "Another CPU"
    doc["run"]["environment"]["cpu"]["model"] = "Another CPU"
    doc["run"]["run_id"] = "other-machine"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(doc))
    code, _, err = _main(capsys, "compare", str(js), str(other), "--json", str(tmp_path / "c.json"))
    assert code == 0, err
    assert "unlike environments" in err and "Another CPU" in err
    result = json.loads((tmp_path / "c.json").read_text())
    assert len(result["rows"]) == 2
    for row in result["rows"]:
        assert row["ratio"] == pytest.approx(1.1, rel=1e-6)
    code, out, _ = _main(capsys, "compare", str(js), str(js), "--md", "-")
    assert code == 0 and out.count("no significant difference") == 2
    assert "unlike environments" not in out
    code, _, err = _main(capsys, "compare", str(js), str(tmp_path / "nope.json"))
    assert code == 2 and "not found" in err
