"""Run only where an accelerator exists (skipped elsewhere by tests/conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from devicebench.devices.discovery import DeviceSpec
from devicebench.devices.timers import CudaEventTimer, PerfCounterTimer, make_timer
from devicebench.measure.config import InferenceConfig, TimingPolicy
from devicebench.measure.inference import measure_inference

FAST = TimingPolicy(warmup_iters=3, warmup_s=0, min_iters=10, min_time_s=0.1, max_time_s=2.0)
pytestmark = pytest.mark.gpu


def _cuda() -> DeviceSpec:
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    return DeviceSpec("cuda", 0)


def test_cuda_uses_events_and_they_see_the_device_work() -> None:
    dev = _cuda()
    timer = make_timer(dev)
    assert isinstance(timer, CudaEventTimer)
    a = torch.randn(4096, 4096, device="cuda")
    timer.time_ns(lambda: a @ a)  # warm-up (cuBLAS handle)
    event_ms = timer.time_ns(lambda: [a @ a for _ in range(20)]) / 1e6
    torch.cuda.synchronize()
    unsynced_ms = PerfCounterTimer().time_ns(lambda: [a @ a for _ in range(20)]) / 1e6
    torch.cuda.synchronize()
    assert event_ms > unsynced_ms  # without a sync the host clock misses queued work


@pytest.mark.parametrize("model", ["resnet50-tiny", "bert-base-tiny"])
def test_gpu_record_has_compute_and_end_to_end(model: str) -> None:
    dev = _cuda()
    config = InferenceConfig(model, dev.torch_device, batch_size=4, policy=FAST)
    out = measure_inference(config)
    assert out.status == "ok", out.message
    assert out.compute and out.e2e and out.compute.timer == "cuda-events"
    assert out.memory and out.memory.device_allocated_peak_mb and out.memory.device_allocated_peak_mb > 0
    # End to end includes two copies: it cannot be faster than compute alone by much.
    import numpy as np

    assert np.median(out.e2e.samples_ms) >= 0.9 * np.median(out.compute.samples_ms)


def test_cli_gpu_table_has_a_speedup(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _cuda()
    out = tmp_path / "g.json"
    proc = run_cli("infer", "resnet50-tiny", "--device", "all", "--batch-size", "1", "--quick", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "Speedup cuda:0" in proc.stdout
    devices = {r["device"]["type"] for r in json.loads(out.read_text())["records"]}
    assert devices == {"cpu", "cuda"}
