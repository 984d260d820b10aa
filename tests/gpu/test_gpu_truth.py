"""What only a GPU can prove about the GPU path (issue 13). Skipped without CUDA.

Each test says what would make it fail: a host clock in place of CUDA events, TF32 in an fp32
column, events on the wrong device, NVML reading another card, compile or graph capture
inside the timed samples, ONNX Runtime copying through the host.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from devicebench.devices.discovery import DeviceSpec
from devicebench.devices.timers import (
    CudaEventTimer,
    PerfCounterTimer,
    make_timer,
    synchronize,
)
from devicebench.devices.transfer import measure_transfer
from devicebench.measure.config import InferenceConfig, TimingPolicy
from devicebench.measure.inference import measure_inference
from devicebench.measure.parity import compare_outputs

pytestmark = pytest.mark.gpu
FAST = TimingPolicy(warmup_iters=3, warmup_s=0, min_iters=10, min_time_s=0.1, max_time_s=2.0)


def _cuda(index: int = 0) -> DeviceSpec:
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    if torch.cuda.device_count() <= index:
        pytest.skip(f"needs {index + 1} CUDA devices, {torch.cuda.device_count()} found")
    return DeviceSpec("cuda", index)


def _spin_cycles(device: DeviceSpec, ms: float) -> int:
    """``torch.cuda._sleep`` cycles that keep ``device`` busy about ``ms`` milliseconds."""
    khz = torch.cuda.get_device_properties(device.index or 0).clock_rate  # kHz
    return int(khz * ms)


def test_events_time_the_device_not_the_host() -> None:
    """With the GPU still busy on earlier work, a host-side pause inside the timed call is
    hidden behind the queue: events see only the device's 10 ms of work, while any host clock,
    synchronised or not, would read at least the 80 ms pause."""
    dev = _cuda()
    torch.cuda.set_device(0)
    timer = make_timer(dev)
    assert isinstance(timer, CudaEventTimer)
    work = _spin_cycles(dev, 10)
    timer.time_ns(lambda: torch.cuda._sleep(work))  # warm-up
    synchronize(dev)

    def paused_then_work() -> None:
        time.sleep(0.08)
        torch.cuda._sleep(work)

    torch.cuda._sleep(_spin_cycles(dev, 300))  # 300 ms queued ahead, not waited for
    event_ms = timer.time_ns(paused_then_work) / 1e6
    synchronize(dev)
    host_ms = PerfCounterTimer(sync=lambda: synchronize(dev)).time_ns(paused_then_work) / 1e6
    assert host_ms >= 80
    # The device's work (about 10 ms, more if the clocks are low), never the host's pause.
    assert event_ms > 3 and host_ms - event_ms > 60, (event_ms, host_ms)


def test_events_on_the_second_gpu_see_its_work() -> None:
    """Events for cuda:1 recorded while cuda:0 is current must bracket cuda:1's kernels."""
    dev = _cuda(1)
    torch.cuda.set_device(0)  # the wrong device is current, as in a worker that never set it
    timer = CudaEventTimer(dev)
    work = _spin_cycles(dev, 20)

    def on_gpu1() -> None:  # as a model on cuda:1 does: its kernels go to cuda:1
        with torch.cuda.device(1):
            torch.cuda._sleep(work)

    timer.time_ns(on_gpu1)  # warm-up
    ms = timer.time_ns(on_gpu1) / 1e6
    assert ms > 10, ms


def test_fp32_is_ieee_and_passes_fp32_parity_on_a_deep_net() -> None:
    """ResNet-50 on the GPU in fp32 against CPU fp32 eager, judged by the fp32 tolerance; the
    tf32 variant is judged by its own. Fails if cuDNN's TF32 default leaks into fp32."""
    dev = _cuda()
    ref = measure_inference(InferenceConfig("resnet50", "cpu", batch_size=2, policy=FAST, keep_output=True))
    assert ref.status == "ok", ref.message
    gpu = measure_inference(InferenceConfig("resnet50", dev.torch_device, batch_size=2, policy=FAST, keep_output=True))
    assert gpu.status == "ok", gpu.message
    assert gpu.environment.fp32_math == "ieee"
    parity = compare_outputs(gpu.output, ref.output, task="image-classification", numeric="fp32")
    assert parity.passed, parity.reasons
    tf32 = measure_inference(InferenceConfig("resnet50", dev.torch_device, batch_size=2, policy=FAST,
                                             keep_output=True, variant="tf32"))
    assert tf32.status == "ok", tf32.message
    assert tf32.environment.fp32_math == "tf32"
    assert compare_outputs(tf32.output, ref.output, task="image-classification", numeric="tf32").passed
    # TF32 really ran (Ampere and newer): its error is larger than IEEE fp32's.
    if torch.cuda.get_device_capability(0) >= (8, 0):
        tf32_err = compare_outputs(tf32.output, ref.output, task="image-classification", numeric="tf32").max_rel_err
        assert tf32_err > parity.max_rel_err


def test_nvml_energy_is_measured_on_the_card_torch_uses() -> None:
    pytest.importorskip("pynvml")
    dev = _cuda()
    import pynvml

    from devicebench.devices.nvml import match_nvml_index, nvml_identity, torch_identity

    pynvml.nvmlInit()
    try:
        devices = [nvml_identity(pynvml, pynvml.nvmlDeviceGetHandleByIndex(i)) for i in range(pynvml.nvmlDeviceGetCount())]
    finally:
        pynvml.nvmlShutdown()
    assert match_nvml_index(torch_identity(0), devices) is not None
    out = measure_inference(InferenceConfig("resnet50", dev.torch_device, batch_size=32, policy=FAST))
    assert out.status == "ok", out.message
    nvml = [r for r in out.energy["readings"] if r["source"] == "nvml"]
    assert nvml, out.energy["notes"]
    (reading,) = nvml
    assert reading["measured"] and reading["joules_gross"] > 0 and reading["idle_power_w"] > 0
    assert reading["joules_per_call"] > 0


def test_copies_pinned_and_pageable_are_measured() -> None:
    dev = _cuda()
    probe = measure_transfer(dev)
    assert probe.applicable and not probe.note, probe.note
    for value in (probe.h2d_pageable_gbps, probe.h2d_pinned_gbps, probe.d2h_pageable_gbps, probe.d2h_pinned_gbps):
        assert value is not None and value > 0.5
    out = measure_inference(InferenceConfig("resnet50-tiny", dev.torch_device, batch_size=8, policy=FAST, pinned=True))
    assert out.status == "ok", out.message
    assert out.host_memory == "pinned" and out.e2e is not None and out.transfer is not None


@pytest.mark.parametrize("variant", ["compile", "cudagraphs"])
def test_compile_and_graph_capture_stay_out_of_the_samples(variant: str) -> None:
    dev = _cuda()
    if variant == "compile":
        pytest.importorskip("triton")
    out = measure_inference(InferenceConfig("resnet50-tiny", dev.torch_device, batch_size=8, policy=FAST,
                                            variant=variant))
    assert out.status == "ok", out.message
    samples = out.compute.samples_ms
    if variant == "compile":
        # Compilation happens in the first call, timed apart as cold start.
        assert out.cold_start.first_inference_ms > 10 * max(samples)
    else:
        # Capture happens in prepare (cold start), and replays are steady.
        assert out.cold_start.prepare_s > 0
        assert max(samples) < 20 * statistics.median(samples)


def test_gpu_training_with_amp_and_data_wait(tmp_path: Path) -> None:
    dev = _cuda()
    from devicebench.measure.training import TrainConfig, train_on_device
    from devicebench.workloads.synthetic import make_synthetic

    data = make_synthetic(tmp_path / "set", classes=4, train_per_class=16, val_per_class=4, size=32)
    config = TrainConfig(data=str(data), model="tinycnn-tiny", device=dev.torch_device, epochs=2, batch_size=8,
                         image_size=32, loader="stream", workers=0, warmup_steps=2, amp=True)
    out = train_on_device(config)
    assert out.status == "ok", out.message
    assert out.precision in ("amp-bfloat16", "amp-float16")
    assert all(math.isfinite(v) for v in out.step_losses)
    assert all(e.data_wait_s > 0 and e.compute_s > 0 for e in out.epochs)


def test_cpu_and_gpu_fp32_curves_differ_by_rounding_only(tmp_path: Path) -> None:
    """Same weights, data, augmentation and dropout masks (CPU generators), IEEE fp32: the
    first steps' losses agree closely (they drift later by accumulated rounding)."""
    dev = _cuda()
    from devicebench.measure.training import TrainConfig, train_on_device
    from devicebench.workloads.synthetic import make_synthetic

    data = make_synthetic(tmp_path / "set", classes=4, train_per_class=16, val_per_class=4, size=32)
    config = TrainConfig(data=str(data), model="tinycnn-tiny", epochs=1, batch_size=8, image_size=32,
                         loader="memory", workers=0, warmup_steps=2)
    cpu = train_on_device(config)
    gpu = train_on_device(replace(config, device=dev))
    assert cpu.status == gpu.status == "ok"
    for a, b in zip(cpu.step_losses[:3], gpu.step_losses[:3]):
        assert abs(a - b) <= 1e-3 * max(1.0, abs(a)), (cpu.step_losses[:3], gpu.step_losses[:3])


def test_ort_on_cuda_binds_device_buffers(tmp_path: Path) -> None:
    dev = _cuda()
    pytest.importorskip("onnxruntime")
    from devicebench.workloads.onnxrt import OrtModule, ort_providers

    if "CUDAExecutionProvider" not in ort_providers():
        pytest.skip("this onnxruntime has no CUDA provider (install onnxruntime-gpu)")
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten()).eval()
    x = torch.randn(2, 3, 16, 16)
    path = tmp_path / "m.onnx"
    torch.onnx.export(model, (x,), str(path), input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "b"}, "y": {0: "b"}}, dynamo=False)
    session = OrtModule(path, device=dev.torch_device)
    assert session.io_binding
    y = session(x.to(dev.torch_device))
    assert y.is_cuda and torch.allclose(y.cpu(), model(x), atol=1e-4)
    out = measure_inference(InferenceConfig("resnet50-tiny", dev.torch_device, batch_size=4, policy=FAST, variant="ort"))
    assert out.status == "ok", out.message
    assert out.compute.timer == "cuda-events" and out.memory.device_driver_used_mb > 0
    assert statistics.median(out.e2e.samples_ms) >= 0.9 * statistics.median(out.compute.samples_ms)
