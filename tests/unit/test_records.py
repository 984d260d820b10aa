"""Record parts are typed, and their JSON is the documented one: written as before, read from
today's files and older ones (missing keys take defaults, unknown keys are ignored)."""

from __future__ import annotations

import json

from devicebench.measure.config import TimingPolicy
from devicebench.measure.inference import ColdStart
from devicebench.measure.parity import ParityResult
from devicebench.results.parts import EnergyUse, SustainedRun, TimingInfo, TransferTimes, TuningInfo
from devicebench.results.records import InferenceRecord
from report_fixtures import fixed_run, nvml_energy


def test_records_round_trip_through_json() -> None:
    _, recs = fixed_run()
    recs[0].tuning = TuningInfo("naive", "eager fp32", 1, "measured", "ort fp32", "fastest", (2.0, 1.5, 2.5), None)
    recs[0].parity = ParityResult("fp32", True, 1e-6, 1e-7, 0.999999, top1_agreement=1.0, samples=1)
    recs[1].tuning = TuningInfo("crossover", "eager fp16", batch_size=8)
    recs[1].transfer_ms = TransferTimes([0.2, 0.21, 0.19], [0.05, 0.06])
    for rec in recs:
        data = json.loads(json.dumps(rec.to_dict()))
        back = InferenceRecord.from_dict(data)
        assert back == rec
        assert back.to_dict() == data


def test_an_older_record_reads_with_defaults_and_unknown_keys_are_ignored() -> None:
    _, recs = fixed_run()
    data = recs[1].to_dict()
    for key in ("energy", "sustained", "parity", "tuning", "transfer_ms", "variant", "model_file"):
        del data[key]  # written before issues 5-7
    del data["cold_start"]["prepare_s"]  # written before issue 6
    data["from_the_future"] = 1
    data["memory"]["swap_peak_mb"] = 3.0
    data["timing"]["new_loop_key"] = "x"
    rec = InferenceRecord.from_dict(data)
    assert rec.energy is None and rec.tuning is None and rec.variant == "eager"
    assert rec.cold_start == ColdStart(0.5, 0.1, recs[1].cold_start.first_inference_ms, prepare_s=0.0)
    assert rec.memory is not None and rec.memory.rss_peak_mb == 812.4
    assert rec.timing.policy == TimingPolicy() and rec.timing.timer == "cuda-event"


def test_keys_that_do_not_apply_stay_absent() -> None:
    crossover = TuningInfo("crossover", "eager fp32", batch_size=4).to_dict()
    assert crossover == {"role": "crossover", "candidate": "eager fp32", "batch_size": 4}
    naive = TuningInfo("naive", "eager fp32", 4, "cache", "eager fp32", "reused").to_dict()
    assert naive["speedup_vs_naive"] is None and naive["speedup_vs_ort"] is None and naive["source"] == "cache"

    assert TimingInfo().to_dict() == {}
    failed = TimingInfo(policy=TimingPolicy(), seed=0).to_dict()
    assert set(failed) == {"policy", "seed"}
    ran = TimingInfo(timer="perf_counter", iterations=10, stop_reason="time_cap").to_dict()
    assert ran["other_cpu_load"] is None and "e2e_timer" not in ran  # unreadable load: null, not absent

    few = SustainedRun.from_dict({"duration_s": 1.0, "window_s": 0.5, "summary": {"change": None, "text": "too few"}})
    assert few.to_dict()["summary"] == {"change": None, "text": "too few"} and "note" not in few.to_dict()


def test_copy_times_are_computed_from_their_samples() -> None:
    assert TransferTimes.from_samples([], []) is None
    only_h2d = TransferTimes.from_samples([1.0, 2.0, 3.0], [])
    assert only_h2d is not None and only_h2d.d2h is None
    assert list(only_h2d.to_dict()) == ["h2d_median_ms", "h2d_ci95", "h2d_samples_ms"]
    assert only_h2d.to_dict()["h2d_median_ms"] == 2.0


def test_energy_sums_idle_power_over_its_readings() -> None:
    energy = EnergyUse.from_dict(nvml_energy(1.0, 100.0))
    assert energy.readings[0].domain == "gpu:0" and energy.idle_power_w == 80.0
    assert EnergyUse().idle_power_w is None
