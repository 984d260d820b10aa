"""Tuning on a real accelerator: GPU candidates run, parity holds, copies are timed apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from devicebench.devices.discovery import available_devices
from devicebench.measure.config import TimingPolicy
from devicebench.results.tuning_cache import TuningCache
from devicebench.run.tuning.tuner import TuneRequest, tune_and_compare

TINY = TimingPolicy(warmup_iters=2, warmup_s=0.0, min_iters=5, min_time_s=0.0, max_time_s=0.5, target_rel_ci=0.5)


@pytest.mark.gpu
def test_gpu_tuning_parity_and_crossover(tmp_path: Path) -> None:
    devices = tuple(available_devices())
    assert len(devices) > 1
    only = ("eager fp16", "tf32", "cudagraphs", "channels_last") if devices[1].type == "cuda" else ("eager fp16",)
    report = tune_and_compare(
        TuneRequest("tinycnn-tiny", devices[:2], policy=TINY, screen_policy=TINY, only=only, crossover=(1, 8)),
        cache=TuningCache(tmp_path / "c.json"),
    )
    gpu = report.tunings[1]
    assert any(c.status in ("ok", "winner") and c.precision == "fp16" for c in gpu.candidates)
    for c in gpu.candidates:
        if c.status in ("ok", "winner"):
            assert c.parity and c.parity.passed
    (answer,) = report.answers
    assert answer.naive_speedup is not None and answer.fair_speedup is not None
    rows = report.crossover["curves"][devices[1].torch_device]
    assert all(r["h2d_ms"] is not None and r["d2h_ms"] is not None for r in rows if r["status"] == "ok")
