"""Looking back: `history` (status that reflects failures, a result per run), `show` of every
kind of run in full, and compare's verdict naming the cause it recorded."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from report_fixtures import RUN_ID, environment, fixed_run, inference, training

from devicebench.cli import main
from devicebench.reports.lookback import run_result, run_status
from devicebench.results.compare import compare_runs
from devicebench.results.parts import TimingInfo
from devicebench.results.records import RunInfo
from devicebench.results.store import Store
from devicebench.run.context import RunContext


def _failed(rec):  # type: ignore[no-untyped-def]
    return replace(rec, status="error", message="ImportError: onnxruntime is not installed\ntraceback...",
                   latency_ms=None, e2e_latency_ms=None, samples_ms=[], e2e_samples_ms=[], throughput_per_s=None)


def test_a_run_whose_every_configuration_failed_is_not_complete() -> None:
    _, recs = fixed_run()
    with RunContext("devicebench infer x") as ctx:
        for rec in recs[:2]:
            ctx.keep(_failed(rec))
    assert ctx.run.status == "failed"
    with RunContext("devicebench infer x") as ctx:
        ctx.keep(_failed(recs[0]))
        ctx.keep(recs[1])
    assert ctx.run.status == "complete"
    old = RunInfo(run_id="r", command="c", status="complete")  # stored before the rule
    assert run_status(old, [_failed(recs[0])], []) == "failed"


def test_the_result_line_says_what_the_run_found() -> None:
    _, recs = fixed_run()
    line = run_result(recs, [])
    assert line.startswith("resnet50 b1 cpu 50.0 ms, cuda:0 0.83x") and "6 more configuration(s)" in line
    failed = run_result([_failed(r) for r in recs[:3]], [])
    assert failed == "all 3 failed: error (ImportError: onnxruntime is not installed)"
    trained = run_result([], [training("cpu"), training("cuda:0", epoch_s=2.0)])
    assert "tinycnn trained 4 epoch(s) on cpu, val top-1 72.0%; cuda:0 5.0x faster per epoch" in trained


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "r.db")
    run, recs = fixed_run()
    with Store(path) as store:
        store.begin_run(replace(run, status="running"))
        for rec in recs:
            store.put_record(rec)
        store.finish_run(RUN_ID, "complete")
        train_run = RunInfo(run_id="20261128-010000-aaaaaa", command="devicebench train", environment=environment())
        store.begin_run(train_run)
        for t in (training("cpu"), training("cuda:0", epoch_s=2.0, reach=5.0)):
            store.put_record(replace(t, run_id=train_run.run_id))
        store.finish_run(train_run.run_id, "complete")
        bad = RunInfo(run_id="20261128-020000-bbbbbb", command="devicebench infer x.onnx", environment=environment())
        store.begin_run(bad)
        store.put_record(replace(_failed(recs[0]), run_id=bad.run_id, record_id="bad-1"))
        store.finish_run(bad.run_id, "complete")  # as runs were stored before the rule
    return path


def test_history_shows_failure_and_a_result_per_run(db: str, capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    assert main(["history", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "│ failed " in out and "all 1 failed: error" in out
    assert "resnet50 b1 cpu 50.0 ms" in out and "tinycnn trained 4 epoch(s)" in out
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["history", "--db", db]) == 0
    assert max(len(line) for line in capsys.readouterr().out.splitlines()) <= 80


def test_show_prints_a_training_run_in_full(db: str, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["show", "20261128-010000", "--db", db]) == 0
    out = capsys.readouterr().out
    assert out.count("Epoch") >= 2 and "tinycnn on cuda:0" in out and "Training speedup" in out
    assert "72.0%" in out  # the last epoch's validation top-1


def test_show_json_holds_the_training_records(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "20261128-010000", "--db", db, "--json", "-"]) == 0
    doc = json.loads(capsys.readouterr().out)
    stored = [training("cpu"), training("cuda:0", epoch_s=2.0, reach=5.0)]
    assert [r["kind"] for r in doc["records"]] == ["training", "training"]
    for got, want in zip(doc["records"], stored):
        expected = want.to_dict()
        for key in ("epochs", "step_losses", "total_s", "time_to_target_s", "target_acc", "status", "model"):
            assert got[key] == expected[key], key
    assert doc["partial"] is False and doc["run"]["run_id"] == "20261128-010000-aaaaaa"
    # the inference run still holds its inference records only
    assert main(["show", RUN_ID, "--db", db, "--json", "-"]) == 0
    assert {r["kind"] for r in json.loads(capsys.readouterr().out)["records"]} == {"inference"}


def test_show_prints_inference_compact_or_wide(db: str, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["show", RUN_ID, "--db", db]) == 0
    compact = capsys.readouterr().out
    assert "Median [95% CI]" in compact and "p90 / p99" not in compact
    assert max(len(line) for line in compact.splitlines()) <= 80
    assert main(["show", RUN_ID, "--db", db, "--wide"]) == 0
    wide = capsys.readouterr().out
    assert "p90 / p99" in wide and "First call = the first call" in wide


def test_compare_names_the_recorded_cause() -> None:
    run, recs = fixed_run()
    busy = [replace(r, timing=replace(r.timing, other_cpu_load=1.4)) if r.device.type == "cpu" else r
            for r in (inference(r.model, r.device.label, r.batch_size, r.latency_ms.median * 1.3, seed=40 + i)
                      for i, r in enumerate(recs))]
    result = compare_runs(run, recs, replace(run, run_id="b"), busy)
    cpu = next(r for r in result.rows if r.device == "cpu")
    assert "B slower" in cpu.verdict and "other programs used 1.4 cores while B was measured" in cpu.verdict
    gpu = next(r for r in result.rows if r.device == "cuda:0")
    assert "other programs" not in gpu.verdict
    other = replace(run, run_id="c", environment=environment(cpu_model="Another CPU"))
    result = compare_runs(run, recs, other, [replace(r, environment=other.environment) for r in recs])
    assert all("different machines or software: cpu" in r.verdict for r in result.rows)
    assert isinstance(recs[0].timing, TimingInfo)
