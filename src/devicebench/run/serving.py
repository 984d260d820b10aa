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

from devicebench.launchers.worker import run_in_worker
from devicebench.measure.pipeline import (
    PipelineConfig,
    PipelineOutcome,
    measure_pipeline,
)
from devicebench.measure.serving import ServeConfig, ServeOutcome, measure_serving
from devicebench.results.records import RunInfo
from devicebench.results.serving import PipelineRecord, ServingRecord
from devicebench.results.store import Store
from devicebench.run.context import RunContext, failure_message

__all__ = ["pipeline", "pipeline_one", "serve", "serve_one"]


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
