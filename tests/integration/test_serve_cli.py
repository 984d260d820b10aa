"""`devicebench serve` and `pipeline` (issue 16): bad input is one line, results are kept and
read back, the pipeline names its stages and survives hostile folders."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from devicebench.cli import main
from devicebench.devices.discovery import DeviceSpec
from devicebench.measure.loadgen import TrialSettings
from devicebench.measure.pipeline import (
    PipelineConfig,
    list_jpegs,
    make_synthetic_jpegs,
)
from devicebench.measure.serving import ServeConfig
from devicebench.reports.cost import Prices
from devicebench.reports.serving import (
    compare_serving,
    pipeline_headline,
    serving_html,
    serving_rows,
)
from devicebench.results.serving import load_serving
from devicebench.results.store import Store
from devicebench.run.serving import pipeline, serve

CPU = DeviceSpec("cpu")


@pytest.mark.parametrize("argv, words", [
    (["serve", "tinycnn-tiny", "--slo", "99=15ms"], "--slo takes"),
    (["serve", "tinycnn-tiny", "--slo", "p99=abc"], "--slo takes"),
    (["serve", "tinycnn-tiny", "--duration", "0"], "--duration must be positive"),
    (["serve", "tinycnn-tiny", "--scenario", "burst"], "--scenario must be one of"),
    (["serve", "tinycnn-tiny", "--max-batch", "0"], "--max-batch"),
    (["pipeline", "tinycnn-tiny", "--workers", "a"], "--workers"),
    (["pipeline", "tinycnn-tiny", "--images", "/nonexistent/dir"], "cannot be read"),
])
def test_bad_input_is_one_line_and_exit_2(argv: list[str], words: str, capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    code = main([*argv, "--device", "cpu", "--db", str(tmp_path / "r.db")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and words in err and "Traceback" not in err


def test_target_below_single_request_latency_is_one_line_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["serve", "tinycnn-tiny", "--device", "cpu", "--slo", "p99=0.0001ms", "--quick", "--threads", "1",
                 "--db", str(tmp_path / "r.db")])
    err = capsys.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("devicebench: error")]
    assert len(lines) == 1 and "below the single-request latency" in lines[0] and "raise --slo" in lines[0]
    # the measured single-request latency was still kept
    with Store(tmp_path / "r.db") as store:
        run = store.find_run("last")
        kept = store.raw_records(run.run_id, "serving")
    assert kept and kept[0]["status"] == "infeasible" and kept[0]["single_stream"]["p99_ms"] > 0


def test_server_scenario_in_process_is_stored_reported_and_compared(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    settings = TrialSettings(target_ms=250, duration_s=1.0, max_trials=4, min_requests=30, tolerance=0.3)
    config = ServeConfig("tinycnn-tiny", CPU, "server", settings, threads=1, single_stream_s=0.2, calibrate_s=0.2)
    db, out = tmp_path / "r.db", tmp_path / "s.json"
    with Store(db) as store:
        run, records = serve([config], command="test", store=store, json_path=out, in_process=True)
    (record,) = records
    assert record.status == "ok", record.message
    assert record.calibration is not None and record.calibration["n"] > 0
    assert record.trials and all(t["rate"] > 0 for t in record.trials)
    assert record.max_rate is not None and record.max_rate > 0
    assert record.confirm is not None and record.confirm["latencies_ms"]
    assert record.energy is not None and record.energy["joules_per_item"] > 0
    assert record.generator_shares_cores == (1 + 1 > record.cores)
    # JSON and store give the same record back
    for ref, where in ((str(out), None), (run.run_id, db)):
        _, served, _ = load_serving(ref, where)
        assert served[0].max_rate == pytest.approx(record.max_rate)
        assert served[0].trials[0]["rate"] == pytest.approx(record.trials[0]["rate"])
    rows = serving_rows(records, Prices(hourly={"cpu": 1.0}))
    assert rows[0]["usd_per_million"] == pytest.approx(1.0 / (record.max_rate * 3600) * 1e6)
    page = serving_html(run, records, [], Prices(hourly={"cpu": 1.0}))
    assert "Rate under the target" in page and "<script" not in page and 'src="http' not in page
    table = compare_serving(records, records)
    assert table.row_count == 1
    # report and compare from the command line
    assert main(["report", run.run_id, "--db", str(db), "--html", str(tmp_path / "r.html")]) == 0
    assert "trials" in (tmp_path / "r.html").read_text()
    assert main(["compare", str(out), str(out)]) == 0
    assert main(["show", run.run_id, "--db", str(db)]) == 0
    shown = capsys.readouterr().out
    assert "trials of the search" in shown and "Serving" in shown and "B / A" in shown
    data = json.loads(out.read_text())
    assert data["records"][0]["kind"] == "serving"


@pytest.mark.parametrize("scenario", ["single-stream", "offline", "concurrency"])
def test_other_scenarios(scenario: str) -> None:
    settings = TrialSettings(target_ms=1000, duration_s=0.3)
    config = ServeConfig("tinycnn-tiny", CPU, scenario, settings, threads=1, single_stream_s=0.2,
                         concurrency=(1, 2), offline_max_batch=4)
    _, (record,) = serve([config], command="test", in_process=True)
    assert record.status == "ok", record.message
    assert record.single_stream and record.single_stream["p90_ms"] > 0
    if scenario == "offline":
        assert [p["batch"] for p in record.offline] == [1, 2, 4] and record.best_offline
    if scenario == "concurrency":
        assert [p["concurrency"] for p in record.concurrency] == [1, 2]
        assert all(p["throughput_per_s"] > 0 for p in record.concurrency)


def test_pipeline_synthetic_images_stages_and_headline() -> None:
    config = PipelineConfig("tinycnn-tiny", CPU, workers=(0, 1), n_items=16, batch_size=4, threads=1, size=64)
    _, (record,) = pipeline([config], command="test", in_process=True)
    assert record.status == "ok", record.message
    assert [s["workers"] for s in record.splits] == [0, 1]
    for split in record.splits:
        assert split["status"] == "ok", split
        assert set(split["stage_ms_per_item"]) >= {"read", "decode", "copy", "model"}
        assert split["bottleneck"] in split["stage_ms_per_item"]
    assert record.best is not None
    lines = pipeline_headline([record])
    assert any("use decode on the CPU" in line for line in lines)
    assert any("GPU's share of the pipeline is not measured" in line for line in lines)


def test_pipeline_text_tokenises_on_cpu() -> None:
    config = PipelineConfig("bert-base-tiny", CPU, workers=(0,), n_items=8, batch_size=4, threads=1)
    _, (record,) = pipeline([config], command="test", in_process=True)
    assert record.status == "ok", record.message
    assert record.input_kind == "text" and "tokenise" in record.splits[0]["stage_ms_per_item"]


def test_hostile_image_folder(tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    make_synthetic_jpegs(folder, 6, size=(64, 64))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg at all")
    (folder / "notes.txt").write_text("hello")
    (folder / "sub.jpg").mkdir()
    secret = tmp_path / "secret.jpg"
    secret.write_bytes((folder / "synthetic_00000.jpg").read_bytes())
    os.symlink(secret, folder / "link.jpg")
    paths, skipped = list_jpegs(folder, 100)
    names = {p.name for p in paths}
    assert "link.jpg" not in names and "notes.txt" not in names and "sub.jpg" not in names
    assert "broken.jpg" in names and skipped == 3
    config = PipelineConfig("tinycnn-tiny", CPU, images=str(folder), workers=(0,), n_items=100, batch_size=2,
                            threads=1, size=64)
    _, (record,) = pipeline([config], command="test", in_process=True)
    assert record.status == "ok", record.message
    assert record.skipped_files == 3
    assert len(record.decode_errors) == 1 and record.decode_errors[0].startswith("broken.jpg:")
    assert "Traceback" not in record.decode_errors[0]
