"""The GPU path as far as a CPU can check it (issue 13): what each worker sets before it
measures, which card NVML opens, what the parent never asks CUDA, pinned and pageable copies,
ONNX Runtime's I/O binding, the training loop's data wait and dropout masks.

What only a GPU can prove (that the events see the work on cuda:1, that IEEE fp32 passes the
fp32 tolerance on a deep net, that NVML's energy moves...) is in tests/gpu.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from devicebench.devices import nvml as nvml_mod
from devicebench.devices.discovery import DeviceSpec
from devicebench.devices.nvml import (
    GpuIdentity,
    match_nvml_index,
    normalise_uuid,
    open_gpu,
)
from devicebench.devices.prepare import fp32_math_in_force, set_fp32_math, use_device
from devicebench.devices.sysinfo import (
    AcceleratorInfo,
    collect_environment,
    cuda_capability,
)
from devicebench.devices.transfer import (
    NOT_APPLICABLE,
    TransferProbe,
    measure_transfer,
    time_copy,
)
from devicebench.launchers.worker import WorkerResult
from devicebench.measure.config import InferenceConfig, TimingPolicy
from devicebench.measure.inference import InferenceOutcome, measure_inference, to_host
from devicebench.measure.parity import TOLERANCES
from devicebench.measure.variants import numeric_class, variant_unavailable
from devicebench.results.records import InferenceRecord
from devicebench.results.tuning_cache import TuningCache
from devicebench.run.tuning.candidates import plan_candidates
from devicebench.run.tuning.tuner import TuneRequest, in_process, tune_and_compare
from devicebench.workloads.registry import create_model
from devicebench.workloads.nets import HostDropout, TinyCNN, seed_dropout

TINY = TimingPolicy(warmup_iters=1, warmup_s=0.0, warmup_max_s=1.0, min_iters=3, min_time_s=0.0,
                    max_time_s=0.2, target_rel_ci=0.5)
CPU = DeviceSpec("cpu")


@pytest.fixture
def tf32_flags_restored():
    """The flags are process-wide: put back what the test found."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
             torch.get_float32_matmul_precision())
    yield
    torch.set_float32_matmul_precision(saved[2])
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved[0], saved[1]


# -- 1. fp32 is IEEE fp32; TF32 is its own variant and numeric class ---------------------------

def test_set_fp32_math_turns_tf32_off_and_on(tf32_flags_restored) -> None:
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    assert set_fp32_math(tf32=False) == "ieee"
    assert torch.backends.cuda.matmul.allow_tf32 is False and torch.backends.cudnn.allow_tf32 is False
    assert torch.get_float32_matmul_precision() == "highest"
    assert set_fp32_math(tf32=True) == "tf32"
    assert torch.backends.cuda.matmul.allow_tf32 is True and torch.backends.cudnn.allow_tf32 is True
    torch.backends.cudnn.allow_tf32 = False
    assert fp32_math_in_force() == "mixed"


def test_the_worker_runs_ieee_fp32_unless_the_variant_is_tf32(tf32_flags_restored) -> None:
    """torch's default leaves cuDNN's TF32 on: the worker must switch it off before the model
    is built, and say so in the environment it records."""
    seen: list[tuple[bool, bool]] = []

    def factory(config: InferenceConfig):  # type: ignore[no-untyped-def]
        seen.append((torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32))
        return create_model("tinycnn-tiny")

    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True  # as a stray import might
    out = measure_inference(InferenceConfig("tinycnn-tiny", policy=TINY), workload_factory=factory)
    assert out.status == "ok", out.message
    assert seen == [(False, False)]
    assert out.environment is not None and out.environment.fp32_math == "ieee"

    out = measure_inference(InferenceConfig("tinycnn-tiny", policy=TINY, variant="tf32"), workload_factory=factory)
    assert out.status == "ok", out.message
    assert seen[-1] == (True, True) and out.environment.fp32_math == "tf32"


def test_tf32_is_its_own_numeric_class_with_a_wider_tolerance() -> None:
    assert numeric_class("fp32", "eager") == "fp32"
    assert numeric_class("fp32", "tf32") == "tf32"
    assert numeric_class("fp32", "tf32+cudagraphs") == "tf32"
    assert TOLERANCES["tf32"].max_rel_err > TOLERANCES["fp32"].max_rel_err
    assert TOLERANCES["tf32"].min_cosine < TOLERANCES["fp32"].min_cosine


def _gpu_on_the_cpu(corrupt_naive: bool):  # type: ignore[no-untyped-def]
    """A runner whose "cuda:0" runs on the CPU: its naive configuration comes back 100x faster
    and, with ``corrupt_naive``, with a wrong answer (classes reversed), as a GPU fp32 run
    judged against the CPU might fail parity."""

    def runner(func, arg):  # type: ignore[no-untyped-def]
        if not (isinstance(arg, InferenceConfig) and arg.device.type == "cuda"):
            return in_process(func, arg)
        out = func(replace(arg, device=CPU))
        if isinstance(out, InferenceOutcome) and arg.variant == "eager" and out.status == "ok":
            out.compute.samples_ms = [s / 100 for s in out.compute.samples_ms]
            if corrupt_naive and out.output is not None:
                out.output = out.output.flip(-1)
        return WorkerResult(ok=True, value=out)

    return runner


@pytest.mark.parametrize("corrupt", [True, False])
def test_a_configuration_that_failed_parity_is_never_named_best(corrupt: bool, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # The parent plans GPU candidates without asking CUDA anything (item 5).
    for name in ("is_bf16_supported", "get_device_capability", "get_device_properties", "init"):
        monkeypatch.setattr(torch.cuda, name, lambda *a, **k: (_ for _ in ()).throw(AssertionError("parent touched CUDA")))
    request = TuneRequest("tinycnn-tiny", (CPU, DeviceSpec("cuda", 0)), policy=TINY, screen_policy=TINY,
                          top_k=2, only=("tf32",))
    report = tune_and_compare(request, runner=_gpu_on_the_cpu(corrupt), cache=TuningCache(tmp_path / "c.json"))
    gpu = report.tunings[1]
    naive = next(c for c in gpu.candidates if c.name == "eager fp32")
    best = next(r for r in report.records if r.tuning.role == "best" and r.device.type == "cuda")
    if corrupt:
        assert naive.status == "rejected" and not naive.parity.passed
        assert gpu.winner == "tf32 fp32" and best.variant == "tf32"  # the 100x faster naive lost: wrong answer
    else:
        assert gpu.winner == "eager fp32"  # the same fast naive, right answer: it wins
    assert not torch.cuda.is_initialized()


# -- 2. the worker makes cuda:N current; events on that device's stream -----------------------

def test_use_device_sets_the_current_cuda_device() -> None:
    calls: list[int] = []
    use_device(DeviceSpec("cuda", 1), cuda=SimpleNamespace(set_device=calls.append))
    use_device(DeviceSpec("cuda", None), cuda=SimpleNamespace(set_device=calls.append))
    use_device(CPU, cuda=SimpleNamespace(set_device=calls.append))
    assert calls == [1, 0]


def test_measure_inference_makes_the_device_current_before_building(monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[str] = []
    monkeypatch.setattr("devicebench.measure.inference.use_device", lambda d: order.append(f"use {d}"))

    def factory(config: InferenceConfig):  # type: ignore[no-untyped-def]
        order.append("build")
        return create_model("tinycnn-tiny")

    assert measure_inference(InferenceConfig("tinycnn-tiny", policy=TINY), workload_factory=factory).status == "ok"
    assert order == ["use cpu", "build"]


def test_cuda_events_are_recorded_on_the_timed_devices_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    """A call-sequence check (the GPU itself proves the timing in tests/gpu): on cuda:1 the
    events go on cuda:1's stream even when cuda:0 is current."""
    from devicebench.devices import timers

    recorded: list[object] = []

    class Event:
        def __init__(self, enable_timing: bool = False) -> None: ...
        def record(self, stream=None) -> None:  # type: ignore[no-untyped-def]
            recorded.append(stream)
        def synchronize(self) -> None: ...
        def elapsed_time(self, other) -> float:  # type: ignore[no-untyped-def]
            return 1.5

    monkeypatch.setattr(torch.cuda, "Event", Event)
    monkeypatch.setattr(torch.cuda, "device", lambda d: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: f"stream of {device}")
    timer = timers.CudaEventTimer(DeviceSpec("cuda", 1))
    assert timer.time_ns(lambda: None) == 1_500_000
    assert recorded == ["stream of cuda:1", "stream of cuda:1"]


# -- 3. NVML: the card torch measures, by UUID or PCI bus id ----------------------------------

def test_uuids_are_compared_in_one_spelling() -> None:
    assert normalise_uuid("GPU-6B5D0000-aaaa") == "6b5d0000-aaaa"
    assert normalise_uuid(b"GPU-abc") == "abc" and normalise_uuid(None) is None


def test_match_by_uuid_then_pci_never_by_index() -> None:
    nvml_devices = [GpuIdentity("aaaa", (0, 0x17, 0)), GpuIdentity("bbbb", (0, 0x65, 0))]
    # CUDA_VISIBLE_DEVICES=1: torch's cuda:0 is NVML's device 1.
    assert match_nvml_index(GpuIdentity("bbbb", (0, 0x65, 0)), nvml_devices) == 1
    assert match_nvml_index(GpuIdentity(None, (0, 0x17, 0)), nvml_devices) == 0  # no UUID: the PCI bus id
    assert match_nvml_index(GpuIdentity("cccc", (0, 0x65, 0)), nvml_devices) == 1  # UUID unknown to NVML
    assert match_nvml_index(GpuIdentity("cccc", None), nvml_devices) is None
    assert match_nvml_index(GpuIdentity(), nvml_devices) is None
    assert match_nvml_index(GpuIdentity(None, (0, 1, 0)), [GpuIdentity(None, (0, 1, 0))] * 2) is None  # ambiguous


class TwoGpuNvml:
    """pynvml's interface over two cards; ``reads`` says which handle's energy was read."""

    def __init__(self) -> None:
        self.reads: list[int] = []

    def nvmlInit(self) -> None: ...
    def nvmlShutdown(self) -> None: ...
    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetUUID(self, h: int) -> str:
        return ["GPU-aaaa", "GPU-bbbb"][h]

    def nvmlDeviceGetPciInfo(self, h: int):  # type: ignore[no-untyped-def]
        return SimpleNamespace(domain=0, bus=[0x17, 0x65][h], device=0)

    def nvmlDeviceGetTotalEnergyConsumption(self, h: int) -> int:
        self.reads.append(h)
        return 1000


def test_energy_is_read_from_the_card_torch_measures(monkeypatch: pytest.MonkeyPatch) -> None:
    from devicebench.measure.energy import NvmlCounter

    nvml = TwoGpuNvml()
    monkeypatch.setattr(nvml_mod, "torch_identity", lambda index: GpuIdentity("bbbb"))  # torch's cuda:0
    counter = NvmlCounter(0, nvml)
    counter.read_j()
    assert set(nvml.reads) == {1}  # NVML's index 1, not 0
    with pytest.raises(RuntimeError, match="no NVML device is torch's cuda:0"):
        open_gpu(0, TwoGpuNvml(), GpuIdentity("cccc"))


def test_environment_records_the_cards_identity() -> None:
    acc = AcceleratorInfo("cuda:0", "cuda", "NVIDIA H100", uuid="bbbb", pci_bus_id="0000:65:00.0")
    assert acc.uuid == "bbbb" and acc.pci_bus_id == "0000:65:00.0"


# -- 5. the parent plans from what a worker recorded ------------------------------------------

def _env_with_gpu(capability: str):  # type: ignore[no-untyped-def]
    env = collect_environment()
    return replace(env, hip_version=None, accelerators=[AcceleratorInfo("cuda:0", "cuda", "GPU", compute_capability=capability)])


@pytest.mark.parametrize("capability, older", [("7.0", True), ("9.0", False)])
def test_gpu_planning_reads_the_recorded_capability(capability: str, older: bool,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the parent asked CUDA")

    for name in ("is_bf16_supported", "get_device_capability", "get_device_properties", "init", "set_device"):
        monkeypatch.setattr(torch.cuda, name, refuse)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # as on a GPU machine
    env = _env_with_gpu(capability)
    gpu = DeviceSpec("cuda", 0)
    assert cuda_capability(env, gpu) == tuple(int(x) for x in capability.split("."))
    plan = {p.candidate.name: p for p in plan_candidates(gpu, "image-classification", env)}
    assert (plan["eager bf16"].skip_reason is not None) is older
    assert (plan["tf32 fp32"].skip_reason is not None) is older
    assert (variant_unavailable("tf32", gpu, env, "image-classification", "fp32") is not None) is older
    assert not torch.cuda.is_initialized()


def test_capability_is_unknown_without_a_recorded_gpu() -> None:
    env = collect_environment()
    assert cuda_capability(env, DeviceSpec("cuda", 0)) is None
    assert cuda_capability(None, DeviceSpec("cuda", 0)) is None
    assert cuda_capability(replace(_env_with_gpu("8.0"), hip_version="6.2"), DeviceSpec("cuda", 0)) is None


# -- 6. pinned and pageable host buffers; copy speed -------------------------------------------

def test_the_cpu_has_no_copy_and_says_so() -> None:
    probe = measure_transfer(CPU)
    assert not probe.applicable and probe.text() == NOT_APPLICABLE


def test_copy_speed_is_the_median_of_synchronised_copies() -> None:
    ticks = iter(range(1000))
    events: list[str] = []
    seconds = time_copy(lambda: events.append("copy"), lambda: events.append("sync"), repeats=3,
                        clock=lambda: float(next(ticks)))
    assert seconds == 1.0
    assert events[:3] == ["sync", "copy", "sync"] and events.count("copy") == 5  # 2 warm-ups + 3 timed
    probe = TransferProbe("cuda:0", copy_bytes=64 * 2**20, repeats=10, h2d_pageable_gbps=11.3, h2d_pinned_gbps=24.1,
                          d2h_pageable_gbps=9.8, d2h_pinned_gbps=25.0)
    text = probe.text()
    assert "H2D 24.1 GB/s pinned, 11.3 GB/s pageable" in text and "64 MiB copies" in text
    assert TransferProbe.from_dict(probe.to_dict()) == probe


def test_pinned_is_a_labelled_choice_that_round_trips(tmp_path: Path) -> None:
    config = InferenceConfig("tinycnn-tiny", DeviceSpec("cuda", 0), pinned=True)
    assert config.label().endswith("pinned")
    assert not InferenceConfig("tinycnn-tiny", pinned=True).label().endswith("pinned")  # the CPU copies nothing
    out = measure_inference(InferenceConfig("tinycnn-tiny", policy=TINY, pinned=True))
    assert out.status == "ok" and out.host_memory is None and out.transfer is None  # CPU: no end to end, no copy
    record = InferenceRecord.from_outcome("r", InferenceConfig("tinycnn-tiny", policy=TINY), out)
    record.host_memory = "pinned"
    record.transfer_probe = TransferProbe("cuda:0", copy_bytes=1024, repeats=3, h2d_pinned_gbps=20.0)
    back = InferenceRecord.from_dict(record.to_dict())
    assert back.host_memory == "pinned" and back.transfer_probe == record.transfer_probe
    x = torch.ones(3)
    assert torch.equal(to_host(x, pinned=True), x)  # host tensors: nothing to pin


def test_reports_show_the_host_buffers_and_copies() -> None:
    from devicebench.reports.summary import copy_rows

    cpu = InferenceRecord.from_outcome("r", InferenceConfig("tinycnn-tiny", policy=TINY),
                                       measure_inference(InferenceConfig("tinycnn-tiny", policy=TINY)))
    gpu = replace(cpu, device=replace(cpu.device, type="cuda", index=0, name="GPU"), host_memory="pinned",
                  transfer_probe=TransferProbe("cuda:0", copy_bytes=2**20, repeats=3, h2d_pinned_gbps=20.0))
    old = replace(gpu, host_memory=None, transfer_probe=None)
    rows = {r.device: r for r in copy_rows([cpu, gpu, old])}
    assert rows["cpu"].copies == NOT_APPLICABLE
    assert rows["cuda:0"].host_memory == "pageable and pinned" and "20.0 GB/s pinned" in rows["cuda:0"].copies


def test_cli_pinned_option_reaches_every_configuration() -> None:
    from devicebench.cli import build_parser

    args = build_parser().parse_args(["infer", "tinycnn-tiny", "--pinned"])
    assert args.pinned is True
    assert build_parser().parse_args(["run", "--pinned"]).pinned is True


# -- 4. ONNX Runtime: I/O binding (the same code path on the CPU as on CUDA) -------------------

def test_ort_io_binding_gives_the_same_answer_into_reused_buffers(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from devicebench.workloads.onnxrt import OrtModule, numpy_dtype, torch_dtype

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 3), torch.nn.ReLU()).eval()
    path = tmp_path / "m.onnx"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(2, 5),), str(path), input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "b"}, "y": {0: "b"}}, dynamo=False)
    plain, bound = OrtModule(path), OrtModule(path, io_binding=True)
    assert plain.io_binding is False  # CPU default: numpy views
    x = torch.randn(2, 5)
    first, second = bound(x), bound(x + 1)
    assert second is first  # the output buffer allocated at the first call is reused
    assert torch.allclose(second, model(x + 1), atol=1e-6) and torch.allclose(plain(x + 1), second, atol=1e-6)
    four = bound(torch.randn(4, 5))
    assert four.shape == (4, 3) and four is not first  # another shape, another buffer
    assert torch_dtype("tensor(float)") == torch.float32 and numpy_dtype(torch.int64).__name__ == "int64"


# -- 10. dropout masks are the same on every device --------------------------------------------

def test_host_dropout_masks_depend_on_the_seed_alone() -> None:
    layer = HostDropout(0.5).train()
    x = torch.ones(4, 64)
    seed_dropout(layer, 7)
    a = layer(x)
    torch.rand(100)  # another user of the global generator (a device's own draws, say)
    seed_dropout(layer, 7)
    b = layer(x)
    assert torch.equal(a, b) and set(a.unique().tolist()) == {0.0, 2.0}
    seed_dropout(layer, 8)
    assert not torch.equal(layer(x), a)
    assert torch.equal(layer.eval()(x), x)
    assert seed_dropout(TinyCNN(num_classes=3, widths=(4,)), 1) == 1


def test_training_curve_ignores_other_draws_from_the_global_generator(tmp_path: Path) -> None:
    """Two runs that differ only in what else draws from torch's global generator (as a GPU
    run's device generator differs from the CPU's) give the same losses: the masks come from
    the per-step CPU generator."""
    from devicebench.measure.training import TrainConfig, train_on_device
    from devicebench.workloads.synthetic import make_synthetic

    data = make_synthetic(tmp_path / "set", classes=3, train_per_class=8, val_per_class=2, size=32)
    config = TrainConfig(data=str(data), model="tinycnn-tiny", epochs=1, batch_size=8, image_size=32,
                         loader="memory", workers=0, warmup_steps=1)
    plain = train_on_device(config)

    def disturb(progress) -> None:  # type: ignore[no-untyped-def]
        torch.rand(1000)

    disturbed = train_on_device(config, on_step=disturb)
    assert plain.status == disturbed.status == "ok"
    assert plain.step_losses == disturbed.step_losses


def test_data_wait_includes_waiting_for_the_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The loop synchronises after issuing the copy and before reading the clock: a device
    that takes 30 ms to finish each copy shows 30 ms of data wait per step, not of compute."""
    from devicebench.measure import training
    from devicebench.workloads.synthetic import make_synthetic

    waits: list[float] = []

    def slow_sync(spec) -> None:  # type: ignore[no-untyped-def]
        time.sleep(0.03)
        waits.append(0.03)

    monkeypatch.setattr(training, "synchronize", slow_sync)
    data = make_synthetic(tmp_path / "set", classes=2, train_per_class=8, val_per_class=2, size=32)
    config = training.TrainConfig(data=str(data), model="tinycnn-tiny", epochs=1, batch_size=4, image_size=32,
                                  loader="memory", workers=0, warmup_steps=1)
    out = training.train_on_device(config)
    (epoch,) = out.epochs
    assert epoch.steps == 4
    assert epoch.data_wait_s >= 4 * 0.03 * 0.9
