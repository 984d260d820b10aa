"""`db.serve()` and `db.pipeline()` (issue 16): the same records as `devicebench serve` and
`pipeline`, in results objects that show, convert, save and read back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import devicebench as db
from devicebench.cli import main
from devicebench.errors import ConfigError, DatasetError, UserError
from devicebench.reports.cost import Prices
from devicebench.results.serving import PipelineRecord, ServingRecord, load_serving
from devicebench.results.store import Store


def test_serve_returns_stored_serving_results(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[object] = []
    r = db.serve("tinycnn-tiny", devices="cpu", slo="p99=250ms", quick=True, threads=1, isolate=False,
                 db=tmp_path / "r.db", json_path=tmp_path / "s.json", on_record=seen.append,
                 prices=Prices(hourly={"cpu": 2.0}))
    assert isinstance(r, db.ServingResults) and r.ok
    (record,) = r.records
    assert isinstance(record, ServingRecord) and seen == [record]
    assert record.scenario == "server" and record.target_ms == 250 and record.quantile == 0.99
    assert record.max_rate and record.max_rate > 0 and record.trials
    assert r.max_rate == {"cpu": record.max_rate}
    row = r.to_dicts()[0]
    assert row["usd_per_million"] == pytest.approx(2.0 / (record.max_rate * 3600) * 1e6)  # the given price
    text = str(r)
    assert "Serving" in text and "trials of the search" in text
    assert r.markdown().startswith("| Model |") and "tinycnn-tiny" in r.markdown()
    assert "Rate under the target" in r._repr_html_()
    assert r.saved_to == [tmp_path / "r.db"]
    # the store and the JSON file hold what the object holds
    for ref, where in ((str(tmp_path / "s.json"), None), (r.run.run_id, tmp_path / "r.db")):
        _, served, _ = load_serving(ref, where)
        assert served[0].record_id == record.record_id and served[0].max_rate == pytest.approx(record.max_rate)
    assert json.loads((tmp_path / "s.json").read_text())["records"][0]["kind"] == "serving"
    # `show --json` holds the serving record (its trials too), as the run's own --json did
    assert main(["show", r.run.run_id, "--db", str(tmp_path / "r.db"), "--json", str(tmp_path / "show.json")]) == 0
    shown = json.loads((tmp_path / "show.json").read_text())["records"]
    assert shown == json.loads((tmp_path / "s.json").read_text())["records"]
    # `show` at 80 columns: the tables are fitted (cells wrap), no cell is cut to "…"
    monkeypatch.setenv("COLUMNS", "80")
    capsys.readouterr()
    assert main(["show", r.run.run_id, "--db", str(tmp_path / "r.db")]) == 0
    text = capsys.readouterr().out
    assert "tinycnn-tiny" in text and "trials of the search" in text and "…" not in text, text
    # saving again elsewhere
    other = r.save(tmp_path / "other.db")
    with Store(other) as store:
        assert store.raw_records(r.run.run_id, "serving")[0]["record_id"] == record.record_id


def test_serve_other_scenario_and_infeasible_target() -> None:
    r = db.serve("tinycnn-tiny", devices=["cpu"], scenario="concurrency", concurrency=[1, 2], duration_s=0.3,
                 threads=1, isolate=False)
    assert [p["concurrency"] for p in r.records[0].concurrency] == [1, 2]
    # a target below one request's latency: the record says so (nothing raised, nothing lost)
    r = db.serve("tinycnn-tiny", devices="cpu", slo="p99=0.0001ms", quick=True, threads=1, isolate=False)
    assert r.records[0].status == "infeasible" and "raise --slo" in r.records[0].message
    assert not r.ok


@pytest.mark.parametrize("kwargs, error", [
    ({"slo": "99=15ms"}, ConfigError),
    ({"scenario": "burst"}, ConfigError),
    ({"duration_s": 0}, ConfigError),
    ({"max_batch": 0}, ConfigError),
    ({"devices": "tpu"}, UserError),
])
def test_serve_bad_input_raises_before_measuring(kwargs: dict, error: type[Exception]) -> None:
    with pytest.raises(error) as err:
        db.serve("tinycnn-tiny", isolate=False, **kwargs)
    assert "\n" not in str(err.value)


def test_serve_unknown_model() -> None:
    with pytest.raises(UserError):
        db.serve("no-such-model", devices="cpu", isolate=False)


def test_pipeline_returns_stage_timings(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    r = db.pipeline("tinycnn-tiny", devices="cpu", workers=[0], items=8, batch_size=4, threads=1, isolate=False,
                    db=tmp_path / "p.db")
    assert isinstance(r, db.PipelineResults) and r.ok
    (record,) = r.records
    assert isinstance(record, PipelineRecord) and record.splits[0]["status"] == "ok"
    (row,) = r.to_dicts()
    assert row["workers"] == 0 and row["best"] and row["items_per_s"] > 0 and row["model_ms_per_item"] > 0
    assert any("use decode on the CPU" in line for line in r.headline())
    assert "Bottleneck" in r.markdown() and "Pipeline" in str(r)
    _, _, pipes = load_serving(r.run.run_id, tmp_path / "p.db")
    assert pipes[0].record_id == record.record_id
    # `show --json` holds the pipeline record, as `show` prints it
    assert main(["show", r.run.run_id, "--db", str(tmp_path / "p.db"), "--json", str(tmp_path / "show.json")]) == 0
    (shown,) = json.loads((tmp_path / "show.json").read_text())["records"]
    assert shown["kind"] == "pipeline" and shown["record_id"] == record.record_id
    assert shown["splits"] == json.loads(json.dumps(record.to_dict()["splits"]))
    monkeypatch.setenv("COLUMNS", "80")
    capsys.readouterr()
    assert main(["show", r.run.run_id, "--db", str(tmp_path / "p.db")]) == 0
    text = capsys.readouterr().out
    assert "tinycnn-tiny" in text and "Bottleneck" in text and "…" not in text, text


def test_pipeline_bad_input() -> None:
    with pytest.raises(ConfigError):
        db.pipeline("tinycnn-tiny", devices="cpu", decode="fpga", isolate=False)
    with pytest.raises(ConfigError):
        db.pipeline("tinycnn-tiny", devices="cpu", workers=[-1], isolate=False)
    with pytest.raises(ConfigError):
        db.pipeline("bert-base-tiny", devices="cpu", images="/tmp", isolate=False)
    with pytest.raises(DatasetError):
        db.pipeline("tinycnn-tiny", devices="cpu", images="/nonexistent/folder", isolate=False)
