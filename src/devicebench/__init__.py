"""devicebench: on this machine, for this model, how much faster is the GPU than the CPU,
at what cost, and do both give the same answer?

The small public API::

    import devicebench as db
    r = db.compare(my_module, torch.randn(1, 3, 224, 224))   # or a file: db.compare("model.onnx")
    print(r); r.to_pandas(); r.save()
    run, records = db.infer("resnet50", devices="all", batch_sizes=[1, 8])
    run, records = db.run_suite(quick=True)
    run, records = db.load_results("results.json")
    r = db.llm("qwen2.5-0.5b", devices="all", prompt=512, gen=128)  # prefill/decode tok/s, TTFT
    r = db.serve("resnet50", devices="cpu", slo="p99=250ms")   # the rate under a latency target
    r = db.pipeline("resnet50", devices="cpu", workers=[0, 2])  # JPEG files to answers, stage by stage
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from devicebench._version import __version__

if TYPE_CHECKING:
    from devicebench.api import (
        LlmResults,
        PipelineResults,
        Results,
        ServingResults,
        compare,
        llm,
        pipeline,
        serve,
    )
    from devicebench.devices.discovery import DeviceSpec
    from devicebench.devices.sysinfo import Environment
    from devicebench.results.records import InferenceRecord, RunInfo

__all__ = [
    "__version__",
    "available_devices",
    "compare",
    "Results",
    "llm",
    "LlmResults",
    "serve",
    "ServingResults",
    "pipeline",
    "PipelineResults",
    "collect_environment",
    "infer",
    "run_suite",
    "load_results",
    "list_models",
]


def __getattr__(name: str) -> object:
    # compare/Results live in devicebench.api, imported on first use so that
    # `import devicebench` stays light (no torch import).
    if name in ("compare", "Results", "llm", "LlmResults", "serve", "ServingResults", "pipeline", "PipelineResults"):
        from devicebench import api

        return getattr(api, name)
    raise AttributeError(f"module 'devicebench' has no attribute {name!r}")


def available_devices() -> list[DeviceSpec]:
    """Every device torch can use here, the CPU first."""
    from devicebench.devices.discovery import available_devices as _found

    return _found()


def collect_environment() -> Environment:
    """This machine's CPU, accelerators and software versions."""
    from devicebench.devices.sysinfo import collect_environment as _collect

    return _collect()


def list_models(include_tiny: bool = True) -> list[str]:
    """Names of the registered models."""
    from devicebench.workloads.registry import list_models as _list

    return [e.name for e in _list(include_tiny)]


def infer(
    model: str,
    *,
    devices: str | list[str] = "all",
    batch_sizes: list[int] | None = None,
    precision: str = "fp32",
    threads: int | None = None,
    weights: str | Path | None = None,
    quick: bool = False,
    db: str | Path | None = None,
    json_path: str | Path | None = None,
) -> tuple[RunInfo, list[InferenceRecord]]:
    """Measure a registered model on each device and batch size, one worker per configuration.

    Args:
        model: a registered model name (:func:`list_models`).
        devices: ``"all"``, ``"cpu"``, ``"cpu,cuda"``...
        batch_sizes: batch sizes to sweep (the model's defaults when ``None``).
        precision: ``fp32``, ``fp16`` or ``bf16``.
        threads: CPU intra-op threads (torch's default when ``None``).
        weights: local state-dict file; random weights otherwise.
        quick: a warm-up of at most 3 s, then at most 3 s of timed calls per loop (the
            model's build and first call come on top).
        db: results database to append to (``None``: do not store).
        json_path: write the run as JSON here.

    Returns:
        The run and its records (failed configurations included, with their status).

    Raises:
        UserError: unknown model, unavailable device, bad option value.
    """
    from devicebench.devices.discovery import parse_devices
    from devicebench.measure.config import DEFAULT_POLICY, QUICK_POLICY
    from devicebench.results.store import Store
    from devicebench.run.inference import execute, plan_inference

    configs = plan_inference(
        [model], parse_devices(devices), batch_sizes, precision=precision, threads=threads,
        weights=str(weights) if weights else None, policy=QUICK_POLICY if quick else DEFAULT_POLICY,
    )
    store = Store(db) if db is not None else None
    try:
        return execute(configs, command=f"api infer {model}", store=store, json_path=json_path)
    finally:
        if store is not None:
            store.close()


def run_suite(
    *,
    quick: bool = False,
    devices: str | list[str] = "all",
    threads: int | None = None,
    db: str | Path | None = None,
    json_path: str | Path | None = None,
) -> tuple[RunInfo, list[InferenceRecord]]:
    """The default suite (seed 000's table) on every device found."""
    from devicebench.devices.discovery import parse_devices
    from devicebench.results.store import Store
    from devicebench.run.inference import execute, plan_suite

    configs = plan_suite(parse_devices(devices), quick=quick, threads=threads)
    store = Store(db) if db is not None else None
    try:
        return execute(configs, command="api run_suite", store=store, json_path=json_path)
    finally:
        if store is not None:
            store.close()


def load_results(source: str | Path, *, db: str | Path | None = None) -> tuple[RunInfo, list[InferenceRecord]]:
    """A run from a JSON file, or by id (or ``last``) from a results database.

    Raises:
        UserError: a missing or unreadable file, a run not in the store, a database that
            cannot be read.
    """
    from devicebench.results.loading import load_run

    run, records, _training = load_run(str(source), db)
    return run, records
