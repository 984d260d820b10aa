"""Inference runs: plan configurations, measure each in its own worker, store each at once.

It turns a request (models x devices x batch sizes, or a model file) into
:class:`InferenceConfig` values, runs each in a fresh worker process, and keeps each
:class:`InferenceRecord` through :class:`~devicebench.run.context.RunContext`, which commits it
to the store the moment it exists; an interrupted run keeps every finished record and is
marked ``interrupted``.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from devicebench.devices.discovery import DeviceSpec, device_counts, parse_devices
from devicebench.errors import ConfigError, UserError
from devicebench.measure.config import DEFAULT_POLICY, QUICK_POLICY, InferenceConfig, TimingPolicy
from devicebench.measure.inference import InferenceOutcome, measure_in_worker, measure_inference
from devicebench.measure.progress import Progress
from devicebench.launchers import forkserver
from devicebench.launchers.worker import run_in_worker
from devicebench.results.parts import TimingInfo
from devicebench.results.records import DeviceRef, InferenceRecord, RunInfo
from devicebench.results.store import Store
from devicebench.run.context import RunContext, failure_message
from devicebench.workloads.registry import get_model_entry
from devicebench.workloads.weights import check_weights_fit

if TYPE_CHECKING:
    from devicebench.workloads.userfile import UserModelSpec

__all__ = ["find_devices", "SuiteItem", "DEFAULT_SUITE", "QUICK_SUITE", "plan_inference", "plan_suite", "plan_user_model", "execute", "measure_one", "failed_record"]


def find_devices(text: str | list[str] | None) -> list[DeviceSpec]:
    """:func:`~devicebench.devices.discovery.parse_devices`, asking a child of a warm fork
    server which accelerators torch sees when one is at hand: this process then need not
    import torch (2-3 s on a small machine) only to learn that, before its first
    configuration. Elsewhere torch is asked here (while a starting server imports it too)."""
    server = forkserver.warm_ready()
    counts = None
    if server is not None:
        found = run_in_worker(device_counts, None, timeout=120, server=server)
        counts = found.value if found.ok else None
    return parse_devices(text, counts=counts)


@dataclass(frozen=True)
class SuiteItem:
    model: str
    batch_sizes: tuple[int, ...]


#: Seed 000's table: ResNet-50 and BERT-base at batch 1, and a small sweep.
DEFAULT_SUITE = (SuiteItem("resnet50", (1, 8)), SuiteItem("bert-base", (1, 8)))
#: ``--quick``: batch 1 only, with the quick timing policy (:data:`QUICK_POLICY`).
QUICK_SUITE = (SuiteItem("resnet50", (1,)), SuiteItem("bert-base", (1,)))


def plan_inference(
    models: Sequence[str],
    devices: Sequence[DeviceSpec],
    batch_sizes: Sequence[int] | None = None,
    *,
    precision: str = "fp32",
    threads: int | None = None,
    weights: str | None = None,
    policy: TimingPolicy = DEFAULT_POLICY,
) -> list[InferenceConfig]:
    """Every (model, device, batch size) configuration, models outermost.

    Raises:
        UnknownModelError: a model is not registered.
        ConfigError: a value is out of range.
        ModelFileError: ``weights`` do not fit a model (names or shapes), checked here.
    """
    configs: list[InferenceConfig] = []
    for model in models:
        entry = get_model_entry(model)
        if weights is not None:  # before any worker: a file that does not fit is one line
            check_weights_fit(weights, model, flag="")
        sizes = tuple(batch_sizes) if batch_sizes else entry.default_batch_sizes
        for device in devices:
            for batch in sizes:
                configs.append(
                    InferenceConfig(
                        model=model,
                        device=device,
                        batch_size=batch,
                        precision=precision,
                        threads=threads if device.type == "cpu" else None,
                        weights=weights,
                        policy=policy,
                    )
                )
    return configs


def plan_suite(devices: Sequence[DeviceSpec], *, quick: bool = False, threads: int | None = None) -> list[InferenceConfig]:
    """The default suite (or the quick one) on the given devices."""
    suite = QUICK_SUITE if quick else DEFAULT_SUITE
    policy = QUICK_POLICY if quick else DEFAULT_POLICY
    configs: list[InferenceConfig] = []
    for item in suite:
        configs += plan_inference([item.model], devices, item.batch_sizes, threads=threads, policy=policy)
    return configs


def plan_user_model(
    spec: UserModelSpec,
    devices: Sequence[DeviceSpec],
    batch_sizes: Sequence[int] | None = None,
    *,
    precision: str = "fp32",
    threads: int | None = None,
    policy: TimingPolicy = DEFAULT_POLICY,
) -> list[InferenceConfig]:
    """Configurations for a model file or folder: resolved here (format, inputs, hash), so
    that a bad file, a refused pickle or a shape the model rejects stops before any worker.

    The batch size is the first dimension of the input shape unless ``batch_sizes`` is given.

    Raises:
        ModelFileError: missing, corrupt, unknown or unsafe file.
        InputShapeError: inputs that do not fit the model.
        ConfigError: a precision the format cannot run.
    """
    # Imported here: the user-file readers import torch, which a run's parent avoids.
    from devicebench.workloads.userfile import check_batch_sizes, resolve_user_model

    resolved = resolve_user_model(spec)
    if resolved.format == "onnx" and precision != "fp32":
        raise ConfigError(f"{resolved.name} is ONNX: it runs in the precision it was saved in (use --precision fp32)")
    if batch_sizes:
        sizes = tuple(batch_sizes)
    elif resolved.arch and not (spec.input_shapes or spec.input_files):
        sizes = get_model_entry(resolved.arch).default_batch_sizes
    else:
        sizes = (resolved.inputs[0].shape[0],) if resolved.inputs else (1,)
    check_batch_sizes(resolved, sizes)
    return [
        InferenceConfig(
            model=resolved.name, device=device, batch_size=batch, precision=precision,
            threads=threads if device.type == "cpu" else None, policy=policy, user_model=resolved,
        )
        for device in devices
        for batch in sizes
    ]


def failed_record(run_id: str, config: InferenceConfig, error: str, detail: str) -> InferenceRecord:
    """The record of a configuration whose worker failed or died before answering."""
    spec = config.device
    return InferenceRecord(
        run_id=run_id,
        model=config.model,
        device=DeviceRef(spec.type, spec.index, spec.torch_device),
        batch_size=config.batch_size,
        precision=config.precision,
        status="crashed",
        message=failure_message(error, detail),
        weights=f"file:{config.weights}" if config.weights else "random",
        timing=TimingInfo.of(config.policy, config.seed),
        model_file=config.user_model.describe() if config.user_model is not None else None,
    )


def _progress_lines(on_progress: Callable[[Progress], None] | None) -> Callable[[str], None] | None:
    """The worker's progress lines (JSON) as :class:`Progress` values; a garbled line is skipped."""
    if on_progress is None:
        return None

    def on_line(line: str) -> None:
        try:
            progress = Progress.from_dict(json.loads(line))
        except (ValueError, TypeError, AttributeError):
            return
        on_progress(progress)

    return on_line


def measure_one(run_id: str, config: InferenceConfig, *, in_process: bool = False,
                on_progress: Callable[[Progress], None] | None = None) -> InferenceRecord:
    """Measure one configuration in a fresh worker (or in this process, for tests); the
    worker's progress (at most one report a second) goes to ``on_progress``."""
    if in_process:
        return InferenceRecord.from_outcome(run_id, config, measure_inference(config))
    requested = time.time()
    result = run_in_worker(measure_in_worker, config, on_progress=_progress_lines(on_progress))
    answered = time.time()
    if result.ok and isinstance(result.value, InferenceOutcome):
        record = InferenceRecord.from_outcome(run_id, config, result.value)
    else:
        record = failed_record(run_id, config, result.error, result.detail)
    record.timeline = {"requested": requested, **(record.timeline or {}), "answered": answered}
    return record


def _preload(configs: Sequence[InferenceConfig]) -> tuple[str, ...]:
    """What the registered models of a run import when built (the fork server imports it once)."""
    modules: list[str] = []
    for config in configs:
        if config.user_model is None:
            try:
                modules += get_model_entry(config.model).preload
            except UserError:
                continue
    return tuple(dict.fromkeys(modules))


def _for_config(on_progress: Callable[[int, InferenceConfig, Progress], None], index: int,
                config: InferenceConfig) -> Callable[[Progress], None]:
    return lambda progress: on_progress(index, config, progress)


def execute(
    configs: Sequence[InferenceConfig],
    *,
    command: str,
    store: Store | None = None,
    json_path: str | Path | None = None,
    on_start: Callable[[int, InferenceConfig], None] | None = None,
    on_record: Callable[[int, InferenceRecord], None] | None = None,
    run_id: str | None = None,
    measure: Callable[[str, InferenceConfig], InferenceRecord] | None = None,
    on_progress: Callable[[int, InferenceConfig, Progress], None] | None = None,
) -> tuple[RunInfo, list[InferenceRecord]]:
    """Measure each configuration in its own worker; store each record at once.

    The workers are children of one fork server started for the run where that is safe
    (:mod:`devicebench.launchers.forkserver`), else freshly spawned interpreters; either way
    each configuration runs in a process of its own. ``on_progress`` receives each worker's
    progress (at most once a second) with the configuration's index.

    On KeyboardInterrupt (Ctrl-C, or SIGTERM as :class:`~devicebench.errors.Terminated`) the
    run is marked ``interrupted``, the JSON is written with ``"partial": true``, and the
    interrupt propagates (:class:`~devicebench.run.context.RunContext`). ``measure``
    replaces :func:`measure_one` (the Python API's in-process mode passes its own).
    """
    with RunContext[InferenceRecord](command, store=store, json_path=json_path, run_id=run_id) as ctx, \
            forkserver.session(preload=_preload(configs)) if measure is None else contextlib.nullcontext():
        for index, config in enumerate(configs):
            if on_start is not None:
                on_start(index, config)
            if measure is not None:
                record = measure(ctx.run.run_id, config)
            else:
                report = None if on_progress is None else _for_config(on_progress, index, config)
                record = measure_one(ctx.run.run_id, config, on_progress=report)
            ctx.keep(record)
            if on_record is not None:
                on_record(index, record)
    return ctx.run, ctx.records
