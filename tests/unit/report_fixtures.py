"""A fixed run built in code (no measurement): records with known samples for report tests."""

from __future__ import annotations

import numpy as np

from devicebench.devices.sysinfo import AcceleratorInfo, CpuInfo, Environment
from devicebench.measure.inference import ColdStart
from devicebench.measure.memory import MemoryStats
from devicebench.measure.stats import Summary
from devicebench.results.parts import EnergyUse, TimingInfo
from devicebench.results.records import DeviceRef, EpochRow, InferenceRecord, RunInfo, TrainingRecord

RUN_ID = "20261128-000000-abcdef"


def environment(cpu_model: str = "Test CPU 9000 @ 3.0GHz", gpu: str | None = "NVIDIA H100 80GB HBM3",
                torch_version: str = "2.14.1", threads: int = 8) -> dict:
    accs = [AcceleratorInfo("cuda:0", "cuda", gpu, 79.1, "9.0", 132, "580.65", "CUDA 13.0")] if gpu else []
    return Environment(
        hostname="bench-host", os="Linux 6.8", python="3.12.3", torch=torch_version,
        cpu=CpuInfo(cpu_model, "x86_64", 8, 16, 16, ["avx2", "fma"], "AVX2", 62.5, 3000.0),
        accelerators=accs, torch_threads=threads, torch_interop_threads=threads,
        cuda_version="13.0" if gpu else None, packages={"torch": torch_version, "numpy": "2.4.6"},
    ).to_dict()


def samples(median: float, n: int = 200, spread: float = 0.02, seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    return list(median * (1 + spread * rng.standard_normal(n)).clip(0.5))


def inference(model: str, device: str, batch: int, median_ms: float, *, seed: int = 0, env: dict | None = None,
              energy: dict | None = None, memory: dict | None = None, spread: float = 0.02,
              run_id: str = RUN_ID, threads: int = 8) -> InferenceRecord:
    dtype, _, idx = device.partition(":")
    ref = DeviceRef(dtype, int(idx) if idx else None, "Test CPU 9000 @ 3.0GHz" if dtype == "cpu" else "NVIDIA H100 80GB HBM3")
    compute = samples(median_ms * (0.8 if dtype != "cpu" else 1.0), seed=seed, spread=spread)
    e2e = samples(median_ms, seed=seed + 1, spread=spread) if dtype != "cpu" else []
    rec = InferenceRecord(
        run_id=run_id, model=model, device=ref, batch_size=batch, precision="fp32", status="ok",
        task="image-classification", parameters=25_557_032, threads=threads if dtype == "cpu" else 0,
        samples_ms=compute, latency_ms=Summary.from_samples(compute), e2e_samples_ms=e2e,
        e2e_latency_ms=Summary.from_samples(e2e) if e2e else None,
        cold_start=ColdStart(build_s=0.5, to_device_s=0.1, first_inference_ms=3 * median_ms),
        memory=MemoryStats(**(memory or {"rss_peak_mb": 812.4, "rss_baseline_mb": 700.0,
                                          "device_allocated_peak_mb": 123.5 if dtype != "cpu" else None,
                                          "device_reserved_peak_mb": 160.0 if dtype != "cpu" else None})),
        timing=TimingInfo.from_dict(
            {"policy": {"warmup_iters": 5, "warmup_s": 0.5, "warmup_max_s": 10.0, "min_iters": 10,
                        "min_time_s": 1.0, "max_time_s": 15.0, "max_iters": 100000, "target_rel_ci": 0.02},
             "seed": 0, "timer": "perf_counter" if dtype == "cpu" else "cuda-event", "stop_reason": "ci_target"}),
        environment=env or environment(), energy=EnergyUse.from_dict(energy) if energy else None,
    )
    rec.throughput_per_s = batch / (rec.latency_ms.median / 1e3)
    if rec.e2e_latency_ms:
        rec.e2e_throughput_per_s = batch / (rec.e2e_latency_ms.median / 1e3)
    return rec


def nvml_energy(jpi: float, power: float) -> dict:
    return {"source": "nvml+rapl", "measured": True, "joules_per_item": jpi, "joules_per_call": jpi,
            "mean_power_w": power, "readings": [
                {"source": "nvml", "domain": "gpu:0", "measured": True, "seconds": 2.0, "calls": 100,
                 "items_per_call": 1, "joules": 0.8 * jpi * 100, "joules_gross": 200.0, "idle_power_w": 60.0,
                 "mean_power_w": 0.8 * power, "joules_per_call": 0.8 * jpi, "joules_per_item": 0.8 * jpi, "note": ""},
                {"source": "rapl", "domain": "package-0", "measured": True, "seconds": 2.0, "calls": 100,
                 "items_per_call": 1, "joules": 0.2 * jpi * 100, "joules_gross": 50.0, "idle_power_w": 20.0,
                 "mean_power_w": 0.2 * power, "joules_per_call": 0.2 * jpi, "joules_per_item": 0.2 * jpi, "note": ""}],
            "notes": []}


def tdp_energy(jpi: float) -> dict:
    return {"source": "estimate-tdp", "measured": False, "joules_per_item": jpi, "joules_per_call": jpi,
            "mean_power_w": 80.0, "readings": [
                {"source": "estimate-tdp", "domain": "Test CPU 9000", "measured": False, "seconds": 2.0, "calls": 100,
                 "items_per_call": 1, "joules": 160.0, "joules_gross": None, "idle_power_w": None,
                 "mean_power_w": 80.0, "joules_per_call": jpi, "joules_per_item": jpi,
                 "note": "no energy counter and CPU not in the TDP table: assumed 10 W per core x 8 cores; a rough guess"}],
            "notes": []}


def fixed_run() -> tuple[RunInfo, list[InferenceRecord]]:
    """ResNet-50 at batch 1/8/32 on CPU and cuda:0 (CPU wins at 1, GPU from 8); BERT at batch 1."""
    recs = [
        inference("resnet50", "cpu", 1, 50.0, seed=1, energy=tdp_energy(4.0)),
        inference("resnet50", "cuda:0", 1, 60.0, seed=2, energy=nvml_energy(1.5, 120.0)),
        inference("resnet50", "cpu", 8, 300.0, seed=3, energy=tdp_energy(3.0)),
        inference("resnet50", "cuda:0", 8, 80.0, seed=4, energy=nvml_energy(0.5, 200.0)),
        inference("resnet50", "cpu", 32, 1200.0, seed=5, energy=tdp_energy(3.0)),
        inference("resnet50", "cuda:0", 32, 120.0, seed=6, energy=nvml_energy(0.2, 300.0)),
        inference("bert-base", "cpu", 1, 100.0, seed=7),
        inference("bert-base", "cuda:0", 1, 20.0, seed=8),
    ]
    run = RunInfo(run_id=RUN_ID, command="devicebench run", started_at="2026-11-28T00:00:00+00:00",
                  finished_at="2026-11-28T00:05:00+00:00", status="complete", tool_version="0.1.0",
                  hostname="bench-host", environment=environment(), n_records=len(recs))
    return run, recs


def training(device: str = "cpu", epochs: int = 4, epoch_s: float = 10.0, target: float | None = 0.5,
             reach: float | None = 25.0) -> TrainingRecord:
    dtype, _, idx = device.partition(":")
    name = "Test CPU 9000 @ 3.0GHz" if dtype == "cpu" else "NVIDIA H100 80GB HBM3"
    rows = [EpochRow(epoch=i + 1, train_loss=2.0 / (i + 1), train_acc=0.2 * (i + 1), val_loss=2.2 / (i + 1),
                     val_top1=0.18 * (i + 1), val_top5=None, epoch_s=epoch_s, samples_per_s=1000.0 / epoch_s,
                     data_wait_s=0.1, compute_s=epoch_s - 0.1, wall_s=epoch_s * (i + 1)) for i in range(epochs)]
    return TrainingRecord(run_id=RUN_ID, model="tinycnn", device=DeviceRef(dtype, int(idx) if idx else None, name),
                          batch_size=64, precision="fp32", status="ok", epochs=rows, total_s=epoch_s * epochs,
                          target_acc=target, time_to_target_s=reach, settings={"threads": 8},
                          environment=environment())
