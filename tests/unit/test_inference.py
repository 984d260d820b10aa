"""One configuration measured in this process (fast), and the record built from it."""

from __future__ import annotations

from devicebench.measure.config import InferenceConfig, TimingPolicy
from devicebench.measure.inference import measure_inference
from devicebench.results.records import InferenceRecord

FAST = TimingPolicy(warmup_iters=2, warmup_s=0, min_iters=5, min_time_s=0.05, max_time_s=1.0)


def test_a_tiny_model_is_measured_with_every_documented_field() -> None:
    config = InferenceConfig("tinycnn-tiny", "cpu", batch_size=2, threads=1, policy=FAST)
    outcome = measure_inference(config)
    assert outcome.status == "ok", outcome.message
    rec = InferenceRecord.from_outcome("run", config, outcome)
    data = rec.to_dict()
    for key in ("model", "weights", "device", "batch_size", "precision", "threads", "input_shape",
                "latency_ms", "samples_ms", "throughput_per_s", "cold_start", "memory", "status",
                "message", "environment", "timestamp", "run_id", "schema_version"):
        assert key in data, key
    assert data["threads"] == 1
    assert data["input_shape"] == [[2, 3, 64, 64]]
    assert data["weights"] == "random"
    assert set(data["latency_ms"]) >= {"median", "mean", "min", "max", "p90", "p99", "stdev", "iqr", "ci95"}
    assert len(data["samples_ms"]) == data["latency_ms"]["n"] >= 5
    assert data["latency_ms"]["min"] <= data["latency_ms"]["median"] <= data["latency_ms"]["max"]
    assert data["throughput_per_s"] == 2 / (data["latency_ms"]["median"] / 1e3)
    assert data["cold_start"]["first_inference_ms"] > 0 and data["cold_start"]["build_s"] > 0
    assert data["memory"]["rss_peak_mb"] > 0
    assert data["e2e_latency_ms"] is None  # the CPU has no copies: compute is end to end
    assert data["timing"]["stop_reason"] in ("ci_target", "time_cap", "max_iters")
    assert data["environment"]["cpu"]["model"]


def test_a_failure_is_recorded_not_raised() -> None:
    config = InferenceConfig("tinycnn-tiny", "cpu", weights="/nonexistent/weights.pt", policy=FAST)
    outcome = measure_inference(config)
    assert outcome.status == "error"
    assert "weights file not found" in outcome.message
    rec = InferenceRecord.from_outcome("run", config, outcome)
    assert rec.latency_ms is None and not rec.ok
    assert "not loaded" in rec.weights


def test_bf16_runs_and_is_recorded() -> None:
    config = InferenceConfig("bert-base-tiny", "cpu", precision="bf16", policy=FAST)
    outcome = measure_inference(config)
    assert outcome.status == "ok", outcome.message
    assert InferenceRecord.from_outcome("run", config, outcome).precision == "bf16"
