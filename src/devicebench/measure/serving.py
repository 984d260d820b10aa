"""Serve one model on one device under load (runs inside a fresh worker process).

Scenarios (docs/serving.md), after MLPerf LoadGen and Triton's perf_analyzer:

* ``single-stream``: one request at a time, back to back; the 90th percentile is the answer.
* ``server``: open-loop Poisson arrivals; the highest rate whose latency quantile stays under
  the target (:func:`~devicebench.measure.loadgen.search_max_rate`), then one confirming
  trial at that rate with energy measured around it.
* ``offline``: all requests at once; throughput at each batch size up to the largest that fits.
* ``concurrency``: N requests outstanding (closed loop), for each N of a sweep.

Every request's latency ends when its answer is on the host. The load generator is
calibrated first against a system that does nothing (its own slip and overhead), and a
CPU under test that leaves it no core of its own is recorded and warned about.
"""

from __future__ import annotations

import math
import time
import traceback
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from devicebench.devices.discovery import DeviceSpec
from devicebench.devices.sysinfo import collect_environment, usable_cores
from devicebench.devices.timers import make_timer, synchronize
from devicebench.errors import ConfigError, UserError
from devicebench.measure.config import TimingPolicy
from devicebench.measure.energy import EnergySession
from devicebench.measure.inference import is_out_of_memory, to_host
from devicebench.measure.loadgen import (
    SLIP_LIMIT_MS,
    Trial,
    TrialSettings,
    confirm_max_rate,
    run_closed_loop,
    run_trial,
    search_max_rate,
)
from devicebench.measure.timing import measure_adaptive
from devicebench.workloads.registry import create_model

__all__ = ["SCENARIOS", "ModelSystem", "NoOpSystem", "ServeConfig", "ServeOutcome", "check_feasible", "measure_serving"]

SCENARIOS = ("server", "single-stream", "offline", "concurrency")
_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
_OFFLINE_POLICY = TimingPolicy(warmup_iters=1, warmup_s=0.0, warmup_max_s=5.0, min_iters=3, min_time_s=0.5,
                               max_time_s=5.0)


@dataclass(frozen=True)
class ServeConfig:
    """One (model, device, scenario) to serve. ``settings`` holds the target and batching."""

    model: str
    device: DeviceSpec
    scenario: str
    settings: TrialSettings
    precision: str = "fp32"
    threads: int | None = None
    weights: str | None = None
    concurrency: tuple[int, ...] = (1, 2, 4, 8)
    offline_max_batch: int = 64
    single_stream_s: float = 3.0
    calibrate_s: float = 1.0

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise ConfigError(f"--scenario must be one of {', '.join(SCENARIOS)}, got {self.scenario!r}")
        if self.precision not in _DTYPES:
            raise ConfigError(f"unknown precision {self.precision!r}")
        if not self.concurrency or any(c < 1 for c in self.concurrency):
            raise ConfigError("--concurrency takes whole numbers >= 1 like 1,2,4,8")
        if self.offline_max_batch < 1 or not self.single_stream_s > 0:
            raise ConfigError("offline max batch >= 1 and a positive single-stream time are required")

    def label(self) -> str:
        return f"{self.model} {self.device} {self.scenario}"


@dataclass
class ServeOutcome:
    """What the worker measured; becomes a :class:`~devicebench.results.serving.ServingRecord`."""

    status: str  # ok | infeasible | oom | error
    message: str
    device_name: str
    threads: int = 0
    cores: int = 0
    environment: dict[str, Any] = field(default_factory=dict)
    single_stream: dict[str, Any] | None = None
    capacity_per_s: float | None = None
    calibration: dict[str, Any] | None = None
    trials: list[dict[str, Any]] = field(default_factory=list)
    max_rate: float | None = None
    bracket: list[float | None] = field(default_factory=list)
    search_note: str = ""
    confirm: dict[str, Any] | None = None
    energy: dict[str, Any] | None = None
    offline: list[dict[str, Any]] = field(default_factory=list)
    concurrency: list[dict[str, Any]] = field(default_factory=list)
    generator_shares_cores: bool = False
    warnings: list[str] = field(default_factory=list)


class NoOpSystem:
    """Answers at once: what the generator and the loop cost by themselves."""

    def run(self, n: int) -> None:
        return None


class ModelSystem:
    """The model behind the server loop: host tensors in, batched up to ``max_batch``, the
    answer copied back to the host (so the time includes both copies on an accelerator)."""

    def __init__(self, model: torch.nn.Module, host_inputs: tuple[torch.Tensor, ...], device: DeviceSpec) -> None:
        self.model = model
        self.host_inputs = host_inputs
        self.target = device.torch_device
        self.accelerator = device.is_accelerator

    def run(self, n: int) -> None:
        with torch.inference_mode():
            inputs = tuple(x[:n].to(self.target) for x in self.host_inputs) if self.accelerator \
                else tuple(x[:n] for x in self.host_inputs)
            to_host(self.model(*inputs))


def check_feasible(single_p99_ms: float, settings: TrialSettings, where: str) -> None:
    """A target below the latency of one request alone cannot be met at any rate.

    Raises:
        ConfigError: the one-line reason and what to do.
    """
    q = settings.quantile
    if single_p99_ms > settings.target_ms:
        raise ConfigError(
            f"the target p{q * 100:g}={settings.target_ms:g}ms is below the single-request latency on {where} "
            f"(p99 {single_p99_ms:.3g} ms with no load): no request rate can meet it; raise --slo")


def _single_stream(system: ModelSystem, seconds: float, min_requests: int = 20) -> list[float]:
    lat: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(lat) < min_requests:
        t0 = time.perf_counter()
        system.run(1)
        lat.append((time.perf_counter() - t0) * 1e3)
    return lat


def _summary(lat: list[float]) -> dict[str, Any]:
    arr = np.asarray(lat)
    return {"n": int(arr.size), "p50_ms": float(np.percentile(arr, 50)), "p90_ms": float(np.percentile(arr, 90)),
            "p99_ms": float(np.percentile(arr, 99)), "mean_ms": float(arr.mean()), "max_ms": float(arr.max())}


def _batch_median_ms(system: ModelSystem, batch: int, device: DeviceSpec) -> float:
    run = measure_adaptive(make_timer(device, end_to_end=True), lambda: system.run(batch), _OFFLINE_POLICY)
    return float(np.median(run.samples_ms))


def measure_serving(config: ServeConfig) -> ServeOutcome:
    """Serve ``config`` and measure it; never raises for a failed measurement."""
    device = config.device
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    out = ServeOutcome(status="error", message="", device_name=device.torch_device)
    out.threads = torch.get_num_threads()
    out.cores = usable_cores()
    settings = config.settings
    try:
        env = collect_environment()
        out.environment = env.to_dict()
        out.device_name = env.cpu.model if device.type == "cpu" else next(
            (a.name for a in env.accelerators if a.device in (device.torch_device, f"{device.type}:0", device.type)),
            device.torch_device)
        torch.manual_seed(settings.seed)
        workload = create_model(config.model, weights=config.weights)
        dtype = _DTYPES[config.precision]
        biggest = max(settings.max_batch, max(config.concurrency) if config.scenario == "concurrency" else 1,
                      config.offline_max_batch if config.scenario == "offline" else 1)
        host = tuple(x.to(dtype) if x.is_floating_point() else x for x in workload.example(biggest, settings.seed))
        model = workload.module.to(device=device.torch_device, dtype=dtype).eval()
        system = ModelSystem(model, host, device)
        for _ in range(3):  # warm-up: first calls choose kernels and fill caches
            system.run(1)
        synchronize(device)
        if device.type == "cpu" and out.threads + 1 > out.cores:
            out.generator_shares_cores = True

        single = _single_stream(system, config.single_stream_s)
        out.single_stream = _summary(single)
        if config.scenario == "single-stream":
            pass
        elif config.scenario == "offline":
            _offline(system, device, config, out)
        elif config.scenario == "concurrency":
            for n in config.concurrency:
                point = run_closed_loop(n, settings.duration_s, system, max_batch=settings.max_batch)
                out.concurrency.append(point.to_dict())
        else:
            _server(system, device, config, out)
        if out.generator_shares_cores:
            gen = max((t.get("generator_cpu_frac", 0.0) for t in out.trials), default=0.0)
            out.warnings.append(
                f"the load generator shares the {out.cores} usable core(s) with the CPU under test "
                f"({out.threads} torch threads; the generator used up to {gen:.1%} of a core): "
                f"pass --threads {max(1, out.cores - 1)} to give it a core of its own")
        out.status, out.message = "ok", ""
    except ConfigError as exc:
        out.status, out.message = "infeasible", str(exc)
    except Exception as exc:  # noqa: BLE001 - any failure becomes a recorded status
        oom = is_out_of_memory(exc)
        out.status = "oom" if oom else "error"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        out.message = f"{type(exc).__name__}: {first}"[:500]
        if not oom and not isinstance(exc, UserError):
            out.message += "\n" + "".join(traceback.format_exception(exc))[-2000:]
    return out


def _offline(system: ModelSystem, device: DeviceSpec, config: ServeConfig, out: ServeOutcome) -> None:
    """Throughput at batch 1, 2, 4... up to the largest that fits (an OOM ends the sweep)."""
    batch = 1
    while batch <= config.offline_max_batch:
        try:
            ms = _batch_median_ms(system, batch, device)
            out.offline.append({"batch": batch, "status": "ok", "batch_ms": ms, "items_per_s": batch / (ms / 1e3)})
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            out.offline.append({"batch": batch, "status": "oom", "batch_ms": None, "items_per_s": None})
            if device.type == "cuda":
                torch.cuda.empty_cache()
            break
        batch *= 2


def _server(system: ModelSystem, device: DeviceSpec, config: ServeConfig, out: ServeOutcome) -> None:
    settings = config.settings
    assert out.single_stream is not None
    check_feasible(out.single_stream["p99_ms"], settings, f"{device} ({out.device_name})")
    capacity = 1e3 / out.single_stream["p50_ms"]
    if settings.max_batch > 1:
        capacity = max(capacity, settings.max_batch * 1e3 / _batch_median_ms(system, settings.max_batch, device))
    out.capacity_per_s = capacity
    # The generator alone: a system that answers at once, at twice the capacity (or 200/s).
    cal_rate = max(2 * capacity, 200.0)
    cal_settings = TrialSettings(target_ms=settings.target_ms, quantile=settings.quantile,
                                 duration_s=config.calibrate_s, min_requests=50, seed=settings.seed + 1,
                                 early_stop=False)
    cal = run_trial(cal_rate, cal_settings, NoOpSystem())
    out.calibration = {"rate": cal_rate, "n": cal.n_answered, "slip_p50_ms": cal.slip_p50_ms,
                       "slip_p99_ms": cal.slip_p99_ms, "slip_max_ms": cal.slip_max_ms,
                       "overhead_p50_ms": cal.p50_ms, "overhead_p99_ms": cal.p99_ms,
                       "generator_cpu_frac": cal.generator_cpu_frac}
    if cal.slip_p99_ms > SLIP_LIMIT_MS:
        out.warnings.append(f"the load generator slips by itself (p99 {cal.slip_p99_ms:.2f} ms against a "
                            f"no-op system at {cal_rate:.0f}/s): this machine is busy; latencies include it")

    result = search_max_rate(lambda rate: run_trial(rate, settings, system), capacity, settings)
    out.trials = [t.to_dict() for t in result.trials]
    out.max_rate = result.max_rate
    out.bracket = [result.bracket[0], result.bracket[1] if math.isfinite(result.bracket[1]) else None]
    out.search_note = result.note
    slipped = [t for t in result.trials if t.slipped]
    if slipped:
        worst = max(t.slip_p99_ms for t in slipped)
        out.warnings.append(f"{len(slipped)} of {len(result.trials)} trials slipped (generator p99 slip up to "
                            f"{worst:.2f} ms > {SLIP_LIMIT_MS:g} ms): their latencies include the generator's delay")
    others = [t.other_cpu_load for t in result.trials if t.other_cpu_load is not None]
    if others and max(others) > 0.25:
        out.warnings.append(f"other programs used up to {max(others):.2f} cores during the trials: "
                            "close them and re-run for a number that is this device's alone")
    if result.max_rate > 0:
        # Confirming trials, run whole (no early stop), with energy read around the last one:
        # the rate reported is one whose confirming trial kept the target; a failed one steps
        # the rate down (loadgen.confirm_max_rate), and the last trial's p99 is the one reported.
        energy = EnergySession(device.type, device.index, out.device_name, cores=out.threads)
        whole = replace(settings, early_stop=False)

        def confirming(rate: float) -> Trial:
            energy.begin()
            return run_trial(rate, whole, system, keep_latencies=True)

        found = result.max_rate
        confirmed, confirms = confirm_max_rate(confirming, found)
        confirm = confirms[-1]
        out.energy = energy.end(max(1, confirm.n_answered), 1)
        out.confirm = confirm.to_dict()
        out.trials += [t.to_dict() for t in confirms[:-1]]  # failed confirmations are trials too
        q = f"p{settings.quantile * 100:g}"
        if 0 < confirmed < found:
            out.max_rate = confirmed
            out.warnings.append(f"the search's rate {found:.3g}/s failed its confirming trial; {confirmed:.3g}/s "
                                f"kept the target ({q} {confirm.quantile_ms:.3g} ms) run whole: the rate is near "
                                "saturation, where one trial of this length can pass and the next fail")
        elif confirmed == 0:
            out.max_rate = confirm.rate
            out.warnings.append(f"no confirming trial kept the target (from {found:.3g}/s down to {confirm.rate:.3g}/s; "
                                f"last {q} {confirm.quantile_ms:.3g} ms): the rate shown is unconfirmed, at the edge; "
                                "raise --duration for a firmer answer")
