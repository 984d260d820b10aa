"""Serving and the pipeline on a CUDA GPU (issue 16): skipped without one."""

from __future__ import annotations

import pytest
import torch

from devicebench.devices.discovery import DeviceSpec
from devicebench.measure.loadgen import TrialSettings
from devicebench.measure.pipeline import PipelineConfig
from devicebench.measure.serving import ServeConfig
from devicebench.reports.serving import pipeline_headline
from devicebench.run.serving import pipeline, serve

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_server_scenario_on_cuda_with_batching() -> None:
    settings = TrialSettings(target_ms=50, duration_s=1.0, max_batch=8, max_delay_ms=2, max_trials=5, min_requests=50)
    config = ServeConfig("resnet18-tiny", DeviceSpec("cuda", 0), "server", settings, single_stream_s=0.3, calibrate_s=0.3)
    _, (record,) = serve([config], command="test")
    assert record.status == "ok", record.message
    assert record.max_rate and record.max_rate > 0
    assert not record.generator_shares_cores


def test_pipeline_gpu_decode_and_headline() -> None:
    configs = [PipelineConfig("resnet18-tiny", DeviceSpec(d, i), workers=(0, 2), n_items=32, batch_size=8, size=64)
               for d, i in (("cpu", None), ("cuda", 0))]
    _, records = pipeline(configs, command="test")
    gpu = records[1]
    assert gpu.status == "ok", gpu.message
    assert any(s["decode"] == "gpu" and s["status"] == "ok" for s in gpu.splits), gpu.splits
    assert any("with decoding counted it is" in line for line in pipeline_headline(records))
