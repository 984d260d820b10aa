"""Measure one inference configuration: build, move, warm up, time, record memory.

This runs inside a fresh worker process (see :mod:`.worker`), so thread pools, allocator
state and compiled caches never leak from one configuration into the next. A failure is
returned as a status with its message, never raised, so that a sweep goes on.
"""

from __future__ import annotations

import gc
import re
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from devicebench.devices.discovery import DeviceSpec
from devicebench.devices.sysinfo import Environment, collect_environment
from devicebench.devices.prepare import set_fp32_math, use_device
from devicebench.devices.timers import make_timer, synchronize
from devicebench.devices.transfer import TransferProbe, measure_transfer
from devicebench.errors import DeviceUnavailableError, UserError
from devicebench.measure.config import InferenceConfig
from devicebench.measure.energy import EnergySession
from devicebench.measure.sustained import sustained_for
from devicebench.measure.memory import MemoryStats, read_memory, reset_device_peak, rss_mb
from devicebench.measure.timing import TimingRun, measure_adaptive
from devicebench.workloads.registry import Workload, create_model

if TYPE_CHECKING:
    # Imported where a configuration is measured: records built on ColdStart and
    # InferenceOutcome are read without torch.
    import torch

__all__ = ["ColdStart", "InferenceOutcome", "measure_inference", "measure_in_worker", "load_workload", "is_out_of_memory", "to_host",
           "error_line"]

def _dtype(precision: str) -> torch.dtype:
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


@dataclass
class ColdStart:
    """What a user waits for before the first answer.

    Attributes:
        build_s: building the model (and loading local weights) on the CPU.
        to_device_s: casting and moving it to the device, synchronised.
        first_inference_ms: the very first call, synchronised (lazy init, kernel selection,
            and compilation for ``compile`` variants).
        prepare_s: preparing a tuning variant (quantisation, ONNX export and session,
            CUDA graph capture); 0 for eager.
    """

    build_s: float
    to_device_s: float
    first_inference_ms: float
    prepare_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class InferenceOutcome:
    """Everything measured for one configuration in the worker."""

    status: str  # "ok" | "oom" | "error"
    message: str
    device_name: str
    weights: str = "random"
    task: str = ""
    parameters: int = 0
    input_shape: list[list[int]] | None = None
    input_source: str = ""
    threads: int = 0
    interop_threads: int = 0
    compute: TimingRun | None = None
    e2e: TimingRun | None = None
    cold_start: ColdStart | None = None
    memory: MemoryStats | None = None
    environment: Environment | None = None
    energy: dict[str, Any] | None = None  # see measure/energy.py: counters or a labelled estimate
    sustained: dict[str, Any] | None = None  # see measure/sustained.py (only with sustained_s)
    model_file: dict[str, Any] | None = None
    #: The model's output on the example inputs, on the host (only with ``keep_output``).
    output: Any = None
    #: End to end on an accelerator: ``pageable`` or ``pinned`` host buffers (``None`` on the CPU).
    host_memory: str | None = None
    #: Host<->device copy speed on this device (:class:`~devicebench.devices.transfer.TransferProbe`).
    transfer: TransferProbe | None = None
    #: Wall-clock moments of this configuration's life in the worker (Unix seconds, read
    #: outside every timed call): ``worker_start``, ``first_call_start`` (built and on the
    #: device), ``loop_end`` (the last timed loop over), ``worker_end``. Where a run's time
    #: goes beyond measuring (benchmarks/bench_config_overhead.py); docs/results-schema.md.
    timeline: dict[str, float] = field(default_factory=dict)


def is_out_of_memory(exc: BaseException) -> bool:
    """True for out-of-memory errors on any device (they have no common class)."""
    import torch

    oom_type = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    if isinstance(exc, (oom_type, MemoryError)):
        return True
    text = str(exc).lower()
    return "out of memory" in text or "can't allocate memory" in text or "failed to allocate" in text


#: Lines that wrap a model's own error rather than state it (TorchScript's interpreter,
#: torch.export's and ONNX Runtime's call frames).
_WRAPPER_LINES = ("The following operation failed in the TorchScript interpreter",
                  "Traceback of TorchScript", "Traceback of TorchScript, original code")
_ERROR_LINE = re.compile(r"^(?:[\w.]+\.)?(\w*(?:Error|Exception)): \S")


def error_line(exc: BaseException) -> str:
    """The one line that says what went wrong, as the model itself said it.

    Usually ``Type: first line of the message``. When the message is a wrapper around the
    model's own error (TorchScript's "The following operation failed in the TorchScript
    interpreter", followed by a traceback of the scripted code), the model's line is the
    last ``SomeError: ...`` line of that text (``RuntimeError: Expected 4-dimensional input
    ... got [1, 3, 64]``).
    """
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    if any(lines[0].startswith(w) for w in _WRAPPER_LINES):
        causes = [ln for ln in lines[1:] if _ERROR_LINE.match(ln)]
        if causes:
            return causes[-1]
    return f"{type(exc).__name__}: {lines[0]}"


def to_host(value: Any, *, pinned: bool = False) -> Any:
    """Copy a model output (tensor or nested tuple/list/dict of them) to host memory.

    With ``pinned`` (CUDA tensors only) each tensor is copied asynchronously into a pinned
    host buffer: the caller must synchronise before it reads the result (the end-to-end
    timer does, before it reads the clock).
    """
    import torch

    if isinstance(value, torch.Tensor):
        if pinned and value.is_cuda:
            out = torch.empty(value.shape, dtype=value.dtype, pin_memory=True)
            return out.copy_(value, non_blocking=True)
        return value.cpu()
    if isinstance(value, (list, tuple)):
        return type(value)(to_host(v, pinned=pinned) for v in value)
    if isinstance(value, dict):
        return {k: to_host(v, pinned=pinned) for k, v in value.items()}
    return value


def _device_name(device: DeviceSpec, env: Environment | None) -> str:
    if env is None:
        return device.torch_device
    if device.type == "cpu":
        return env.cpu.model
    wanted = device.torch_device if device.index is not None else f"{device.type}:0"
    names = [a.name for a in env.accelerators if a.device in (wanted, device.type)]
    return names[0] if names else device.torch_device


def _cast_inputs(inputs: tuple[torch.Tensor, ...], dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    return tuple(x.to(dtype) if x.is_floating_point() else x for x in inputs)


def measure_inference(
    config: InferenceConfig,
    *,
    workload_factory: Callable[[InferenceConfig], Workload] | None = None,
) -> InferenceOutcome:
    """Run and time one configuration; never raises for a failed measurement.

    Args:
        config: what to run.
        workload_factory: builds the workload (tests and the Python API pass their own);
            defaults to :func:`load_workload` (the registry, or the user's model file).
    """
    import torch

    device = config.device
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    outcome = InferenceOutcome(status="error", message="", device_name=device.torch_device)
    outcome.timeline["worker_start"] = time.time()
    outcome.threads = torch.get_num_threads()
    outcome.interop_threads = torch.get_num_interop_threads()
    try:
        # Before anything touches the device: cuda:N current (events, streams and graphs are
        # made on the current device), and fp32 meaning IEEE fp32 unless the variant is tf32.
        use_device(device)
        set_fp32_math(tf32="tf32" in config.variant.split("+"))
        outcome.environment = collect_environment()
        outcome.device_name = _device_name(device, outcome.environment)
        baseline = round(rss_mb(), 1)
        torch.manual_seed(config.seed)

        t0 = time.perf_counter()
        workload = (workload_factory or load_workload)(config)
        build_s = time.perf_counter() - t0
        outcome.model_file = workload.model_file
        outcome.weights = workload.weights
        outcome.task = workload.task
        outcome.parameters = workload.parameters
        outcome.input_shape = workload.input.shapes(config.batch_size)
        outcome.input_source = workload.input.source

        dtype = _dtype(config.precision)
        host_inputs = _cast_inputs(workload.example(config.batch_size, config.seed), dtype)
        reset_device_peak(device)
        t0 = time.perf_counter()
        model = workload.module.to(device=device.torch_device, dtype=dtype).eval()
        dev_inputs = tuple(x.to(device.torch_device) for x in host_inputs)
        synchronize(device)
        to_device_s = time.perf_counter() - t0
        prepare_s = 0.0
        if config.variant != "eager":
            from devicebench.measure.variants import prepare_variant

            t0 = time.perf_counter()
            model, dev_inputs = prepare_variant(config, model, dev_inputs, device, workload)
            synchronize(device)
            prepare_s = time.perf_counter() - t0

        compute_timer = make_timer(device)
        outcome.timeline["first_call_start"] = time.time()
        with torch.inference_mode():
            def compute() -> object:
                return model(*dev_inputs)

            first_ms = compute_timer.time_ns(compute) / 1e6
            outcome.cold_start = ColdStart(build_s, to_device_s, first_ms, prepare_s)
            # Energy: counters read before and after the loop only (idle baseline first).
            energy = EnergySession(device.type, device.index, outcome.device_name, cores=outcome.threads)
            energy.begin()
            outcome.compute = measure_adaptive(compute_timer, compute, config.policy)
            outcome.energy = energy.end(outcome.compute.warmup_iters + len(outcome.compute.samples_ms),
                                        config.batch_size)

            if device.is_accelerator:
                # End to end as a user sees it: host tensors in, the answer back on the host,
                # from pageable buffers (a plain tensor) or, with --pinned on CUDA, pinned ones
                # copied asynchronously (the timer synchronises before it reads the clock).
                e2e_timer = make_timer(device, end_to_end=True)
                target = device.torch_device
                pin = config.pinned and device.type == "cuda"
                outcome.host_memory = "pinned" if pin else "pageable"
                e2e_inputs = tuple(x.pin_memory() for x in host_inputs) if pin else host_inputs

                def end_to_end() -> object:
                    return to_host(model(*(x.to(target, non_blocking=pin) for x in e2e_inputs)), pinned=pin)

                outcome.e2e = measure_adaptive(e2e_timer, end_to_end, config.policy, phase="e2e")
            if getattr(config, "sustained_s", None):
                outcome.sustained = sustained_for(device.type, device.index, compute_timer, compute,
                                                  duration_s=config.sustained_s, items_per_call=config.batch_size)
            outcome.timeline["loop_end"] = time.time()
            for run in (outcome.compute, outcome.e2e):  # summarised here, where numpy is at hand
                if run is not None and run.samples_ms:
                    run.summary = run.summarise(config.policy.min_iters)
            if config.keep_output:
                outcome.output = to_host(model(*dev_inputs))
        outcome.memory = read_memory(device, baseline)
        if device.is_accelerator and config.probe_copies:
            # After the memory peaks are read: the probe's buffers are not the model's.
            outcome.transfer = measure_transfer(device)
        outcome.status, outcome.message = "ok", ""
    except Exception as exc:  # noqa: BLE001 - any failure becomes a recorded status
        oom = is_out_of_memory(exc)
        outcome.status = "oom" if oom else "error"
        if isinstance(exc, DeviceUnavailableError):
            # e.g. an ONNX file on a GPU without onnxruntime's CUDA provider: said plainly.
            outcome.status = "unavailable"
        outcome.message = error_line(exc)[:500]  # the model's own line, not a wrapper's
        if not oom and not isinstance(exc, UserError):  # a user's mistake needs no traceback
            outcome.message += "\n" + "".join(traceback.format_exception(exc))[-2000:]
        try:
            outcome.memory = read_memory(device, None)
        except Exception:  # noqa: BLE001 - memory after a failure is best effort
            pass
    outcome.timeline["worker_end"] = time.time()
    return outcome


def measure_in_worker(config: InferenceConfig) -> InferenceOutcome:
    """:func:`measure_inference` as a worker process runs it (the run's workers call this).

    First every object the process already holds is moved to the garbage collector's
    permanent generation (:func:`gc.freeze`): the interpreter's imports, and in a child of
    the fork server the server's copy of torch, torchvision and transformers (~400,000
    objects). None of them is this configuration's garbage, yet the full collection before
    each timed loop (:func:`~devicebench.measure.timing.measure_adaptive`) walked them all,
    0.2-0.3 s per loop, and in a forked child wrote to every page that holds them
    (copy-on-write). The collection still runs, over what the configuration made; the timed
    loop is unchanged (the collector is off inside it either way). Only for a process of its
    own: a frozen object is never collected, which an in-process caller would not want.
    """
    gc.freeze()
    return measure_inference(config)


def _registry_workload(config: InferenceConfig) -> Workload:
    return create_model(config.model, weights=config.weights)


def load_workload(config: InferenceConfig) -> Workload:
    """The workload of a configuration: the user's model file when it names one, else the
    registered model (with its optional weights file).

    Raises:
        UserError: unknown name, unreadable or unsafe file, unavailable device for the format.
    """
    if config.user_model is None:
        return _registry_workload(config)
    from devicebench.workloads.userfile import load_user_model

    workload = load_user_model(config.user_model, device=config.device.torch_device, threads=config.threads)
    workload.model_file = config.user_model.describe()
    return workload
