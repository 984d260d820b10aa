"""LLM generation on a GPU (issue 15): run only where CUDA exists (skipped elsewhere)."""

from __future__ import annotations

import pytest
import torch

from devicebench.devices.bandwidth import measure_bandwidth
from devicebench.devices.discovery import DeviceSpec
from devicebench.run.llm import LlmRequest, execute_llm, plan_llm

pytestmark = pytest.mark.gpu


def _cuda() -> DeviceSpec:
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    return DeviceSpec("cuda", 0)


def test_cuda_bandwidth_probe_is_device_synchronised_and_plausible() -> None:
    probe = measure_bandwidth(_cuda())
    assert probe.error == "" and probe.device == "cuda:0"
    assert 50 < probe.peak_gbps < 20_000  # any real GPU: between a laptop part and beyond an H200


@pytest.mark.parametrize(("variant", "precision"), [("sdpa", "bf16"), ("sdpa", "fp16"), ("static-compile", "bf16")])
def test_gpu_variants_match_cpu_fp32_and_report_every_metric(variant: str, precision: str) -> None:
    gpu = _cuda()
    plan = plan_llm(LlmRequest("llama-3.2-1b-tiny", (DeviceSpec("cpu"), gpu), prompt=32, gen=8, repetitions=3,
                               precision=precision, variants=(variant,)))
    plan = [(c, role) for c, role in plan if role or c.device.type == "cuda"]
    _, records = execute_llm(plan, command="gpu test")  # real workers: the parent never starts CUDA
    rec = records[-1]
    assert rec.ok, rec.message
    assert rec.device.type == "cuda" and len(rec.tokens) == 8
    assert all(len(s) == 7 for s in rec.samples.steps_ns)
    assert rec.parity is not None and rec.parity.passed, rec.parity
    assert rec.memory.device_allocated_peak_mb > 0 and rec.bandwidth.peak_gbps > 0
    assert rec.decode_bandwidth_share is not None and rec.prefill_tflops > 0
    if variant == "static-compile":
        assert rec.cold_start.compile_s is not None

