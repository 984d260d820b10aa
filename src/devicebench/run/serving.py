"""Serving and pipeline runs: one fresh worker per device, each record kept at once.

``devicebench serve`` plans one :class:`~devicebench.measure.serving.ServeConfig` per device;
``devicebench pipeline`` one :class:`~devicebench.measure.pipeline.PipelineConfig` per model
device. Each runs in its own worker (:func:`~devicebench.launchers.worker.run_in_worker`), so
the generator, the model and the loader workers of one device never share a process with
another's; every record goes through :class:`~devicebench.run.context.RunContext`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from devicebench.devices.discovery import parse_devices
from devicebench.errors import ConfigError, DatasetError
from devicebench.launchers.worker import run_in_worker
from devicebench.measure.loadgen import TrialSettings, parse_slo
from devicebench.measure.pipeline import (
    PipelineConfig,
    PipelineOutcome,
    list_jpegs,
    measure_pipeline,
)
from devicebench.measure.serving import (
    SCENARIOS,
    ServeConfig,
    ServeOutcome,
    measure_serving,
)
from devicebench.results.records import RunInfo
from devicebench.results.serving import PipelineRecord, ServingRecord
from devicebench.results.store import Store
from devicebench.run.context import RunContext, failure_message

__all__ = ["pipeline", "pipeline_one", "plan_pipeline", "plan_serve", "serve", "serve_one"]


def plan_serve(model: str, devices: str | Sequence[str] = "all", *, scenario: str = "server",
               slo: str = "p99=15ms", max_batch: int = 1, max_delay_ms: float = 0.0, duration_s: float = 10.0,
               concurrency: Sequence[int] = (1, 2, 4, 8), offline_max_batch: int = 64, threads: int | None = None,
               precision: str = "fp32", seed: int = 0, quick: bool = False) -> list[ServeConfig]:
    """One :class:`ServeConfig` per device, as ``devicebench serve`` and ``db.serve`` run them.

    ``quick``: 2 s trials (at least 50 requests), at most 6 trials, bisection to 10%.

    Raises:
        UserError: an unknown model or device; ConfigError: a bad scenario, target or number.
    """
    from devicebench.workloads.registry import get_model_entry

    get_model_entry(model)
    if scenario not in SCENARIOS:
        raise ConfigError(f"--scenario must be one of {', '.join(SCENARIOS)}, got {scenario!r}")
    quantile, target_ms = parse_slo(slo)
    settings = TrialSettings(target_ms=target_ms, quantile=quantile, duration_s=2.0 if quick else duration_s,
                             max_batch=max_batch, max_delay_ms=max_delay_ms, seed=seed,
                             max_trials=6 if quick else 12, tolerance=0.1 if quick else 0.05,
                             min_requests=50 if quick else 100)
    specs = parse_devices(devices if isinstance(devices, str) else [str(d) for d in devices])
    return [ServeConfig(model, d, scenario, settings, precision=precision, threads=threads if d.type == "cpu" else None,
                        concurrency=tuple(concurrency), offline_max_batch=offline_max_batch,
                        single_stream_s=1.0 if quick else 3.0, calibrate_s=0.5 if quick else 1.0)
            for d in specs]


def plan_pipeline(model: str, devices: str | Sequence[str] = "all", *, images: str | Path = "synthetic",
                  decode: str = "auto", workers: Sequence[int] = (0, 2, 4), batch_size: int = 8, items: int = 64,
                  threads: int | None = None) -> list[PipelineConfig]:
    """One :class:`PipelineConfig` per model device, as ``devicebench pipeline`` and
    ``db.pipeline`` run them.

    Raises:
        UserError: an unknown model or device; ConfigError: a bad ``decode``, ``workers``, or
        ``images`` for a text model; DatasetError: a folder without JPEG files.
    """
    from devicebench.workloads.registry import TokenInput, get_model_entry

    entry = get_model_entry(model)
    if decode not in ("cpu", "gpu", "auto"):
        raise ConfigError(f"--decode must be cpu, gpu or auto, got {decode!r}")
    images = str(images)
    if images != "synthetic":
        if isinstance(entry.input, TokenInput):
            raise ConfigError(f"{model} takes text: --images applies to image models")
        paths, _ = list_jpegs(images, items)  # DatasetError for a missing folder
        if not paths:
            raise DatasetError(f"no .jpg/.jpeg files in {images}")
    specs = parse_devices(devices if isinstance(devices, str) else [str(d) for d in devices])
    if decode == "gpu" and not any(d.type == "cuda" for d in specs):
        raise ConfigError("--decode gpu needs the model on a CUDA GPU (none among: "
                          + ", ".join(str(d) for d in specs) + ")")
    return [PipelineConfig(model, d, images=images, decode=decode, workers=tuple(workers), batch_size=batch_size,
                           n_items=items, threads=threads if d.type == "cpu" else None) for d in specs]


def serve_one(run_id: str, config: ServeConfig, *, in_process: bool = False) -> ServingRecord:
    """Serve one configuration in a fresh worker (or in this process, for tests)."""
    if in_process:
        return ServingRecord.from_outcome(run_id, config, measure_serving(config))
    result = run_in_worker(measure_serving, config)
    if result.ok and isinstance(result.value, ServeOutcome):
        return ServingRecord.from_outcome(run_id, config, result.value)
    return ServingRecord.failed(run_id, config, failure_message(result.error, result.detail))


def pipeline_one(run_id: str, config: PipelineConfig, *, in_process: bool = False) -> PipelineRecord:
    if in_process:
        return PipelineRecord.from_outcome(run_id, config, measure_pipeline(config))
    result = run_in_worker(measure_pipeline, config)
    if result.ok and isinstance(result.value, PipelineOutcome):
        return PipelineRecord.from_outcome(run_id, config, result.value)
    return PipelineRecord.failed(run_id, config, failure_message(result.error, result.detail))


def _execute(configs: Sequence[Any], one: Callable[[str, Any], Any], *, command: str, store: Store | None,
             json_path: str | Path | None, run_id: str | None,
             on_start: Callable[[int, Any], None] | None, on_record: Callable[[int, Any], None] | None
             ) -> tuple[RunInfo, list[Any]]:
    with RunContext[Any](command, store=store, json_path=json_path, run_id=run_id) as ctx:
        for index, config in enumerate(configs):
            if on_start is not None:
                on_start(index, config)
            record = one(ctx.run.run_id, config)
            ctx.keep(record)
            if on_record is not None:
                on_record(index, record)
    return ctx.run, ctx.records


def serve(configs: Sequence[ServeConfig], *, command: str, store: Store | None = None,
          json_path: str | Path | None = None, run_id: str | None = None, in_process: bool = False,
          on_start: Callable[[int, Any], None] | None = None,
          on_record: Callable[[int, Any], None] | None = None) -> tuple[RunInfo, list[ServingRecord]]:
    """Serve each configuration in its own worker; store each record at once."""
    return _execute(configs, lambda rid, c: serve_one(rid, c, in_process=in_process), command=command,
                    store=store, json_path=json_path, run_id=run_id, on_start=on_start, on_record=on_record)


def pipeline(configs: Sequence[PipelineConfig], *, command: str, store: Store | None = None,
             json_path: str | Path | None = None, run_id: str | None = None, in_process: bool = False,
             on_start: Callable[[int, Any], None] | None = None,
             on_record: Callable[[int, Any], None] | None = None) -> tuple[RunInfo, list[PipelineRecord]]:
    """Measure each model device's pipeline in its own worker; store each record at once."""
    return _execute(configs, lambda rid, c: pipeline_one(rid, c, in_process=in_process), command=command,
                    store=store, json_path=json_path, run_id=run_id, on_start=on_start, on_record=on_record)
