"""Orchestration of training comparisons: one worker per device, each record stored at once.

The training counterpart of :mod:`devicebench.runner`. Each device trains in its own fresh
process (nothing carries over: thread pools, the CUDA context, compiled graphs), one after
the other, so that they never compete for the CPU. The worker rewrites its record in the
store after every epoch, so Ctrl-C keeps every finished epoch.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import platformdirs

from devicebench.devices.discovery import DeviceSpec
from devicebench.measure.training import TrainConfig, train_on_device
from devicebench.measure.worker import WorkerResult, run_in_worker
from devicebench.results.jsonio import dump_json, run_document
from devicebench.results.records import DeviceRef, RunInfo, TrainingRecord, new_run_id
from devicebench.results.store import Store
from devicebench.runner import adopt_environment
from devicebench.workloads.datasets import make_synthetic, open_dataset

__all__ = ["SYNTHETIC", "synthetic_dataset", "default_checkpoint_dir", "resolve_data", "execute_training",
           "execute_scaling", "load_baseline"]

#: ``--data synthetic``: the generated set (10 classes x 40 training images, 10 val each).
SYNTHETIC = "synthetic"
_SYNTHETIC_VERSION = "v1"


def _cache_dir() -> Path:
    return platformdirs.user_cache_path("devicebench", appauthor=False)


def synthetic_dataset(cache: str | Path | None = None) -> Path:
    """The synthetic Tiny-ImageNet-layout set, generated once into the cache and reused."""
    base = Path(cache) if cache is not None else _cache_dir()
    target = base / f"synthetic-tiny-imagenet-{_SYNTHETIC_VERSION}"
    if (target / "wnids.txt").is_file():
        return target
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".synthetic-", dir=base))
    make_synthetic(tmp / "set")
    try:
        os.replace(tmp / "set", target)  # another process may have won the race: fine
    except OSError:
        pass
    shutil.rmtree(tmp, ignore_errors=True)
    return target


def default_checkpoint_dir() -> Path:
    return _cache_dir() / "checkpoints"


def resolve_data(data: str | None) -> str:
    """``synthetic`` (or nothing) becomes the generated set; a path is checked here, in the
    parent, so that a bad path is a one-line error rather than a failed worker.

    Raises:
        DatasetError: the path cannot be read as a dataset.
    """
    if data is None or data == SYNTHETIC:
        return str(synthetic_dataset())
    return data


def _failed(config: TrainConfig, run_id: str, error: str, detail: str) -> TrainingRecord:
    spec = DeviceSpec.parse(config.device)
    return TrainingRecord(run_id=run_id, model=config.model,
                          device=DeviceRef(spec.type, spec.index, spec.torch_device),
                          batch_size=config.batch_size, precision="amp" if config.amp else "fp32",
                          status="crashed", message=f"{error}\n{detail[-1500:]}".strip(),
                          target_acc=config.target_acc, settings=config.settings())


def execute_training(
    config: TrainConfig,
    devices: Sequence[DeviceSpec],
    *,
    command: str,
    store: Store | None = None,
    json_path: str | Path | None = None,
    on_start: Callable[[DeviceSpec], None] | None = None,
    on_record: Callable[[TrainingRecord], None] | None = None,
    in_process: bool = False,
    join_run: RunInfo | None = None,
    launchers: Sequence[Callable[[TrainConfig], WorkerResult] | None] | None = None,
) -> tuple[RunInfo, list[TrainingRecord]]:
    """Train ``config`` on each device in turn, each in its own worker.

    ``launchers``, one per device (None: the usual worker), replace how that device's
    training is started, e.g. by :func:`execute_scaling` for a data-parallel run.

    With ``join_run`` the records are added to that (already stored) run, as ``devicebench
    run`` does with its training comparison, and the run's own status is left to its owner.

    Returns the run (status ``complete``, ``failed`` or ``interrupted``) and the records. On
    Ctrl-C it stops, keeps the finished epochs (in the store and the JSON, marked partial)
    and returns with status ``interrupted``.

    Raises:
        DatasetError: the dataset cannot be read (checked before any worker starts).
    """
    from devicebench import __version__

    index = open_dataset(config.data, classes=config.classes, train_per_class=config.train_per_class)
    del index  # only validated here; each worker indexes it again
    run = join_run or RunInfo(run_id=new_run_id(), command=command, tool_version=__version__)
    if store is not None and join_run is None:
        store.begin_run(run)
    records: list[TrainingRecord] = []
    status = "failed"
    try:
        for i, spec in enumerate(devices):
            launch = launchers[i] if launchers is not None else None
            device_config = replace(config, device=spec.torch_device, run_id=run.run_id,
                                    db=str(store.path) if store is not None else None)
            if on_start is not None:
                on_start(spec)
            if in_process and launch is None:
                record = train_on_device(device_config)
            else:
                result = (launch(device_config) if launch is not None
                          else run_in_worker(train_on_device, device_config, inherit_stderr=True))
                record = (result.value if result.ok and isinstance(result.value, TrainingRecord)
                          else _failed(device_config, run.run_id, result.error, result.detail))
            records.append(record)
            adopt_environment(run, record.environment, store)
            if store is not None:
                store.put_record(record)
            if on_record is not None:
                on_record(record)
            if record.status == "interrupted":
                raise KeyboardInterrupt
        status = "complete" if all(r.ok for r in records) else "failed"
    except KeyboardInterrupt:
        status = "interrupted"
        if store is not None:
            # The worker may have been stopped before it could say so: whatever it stored
            # after its last finished epoch is kept, marked interrupted.
            done = {r.record_id for r in records}
            for data in store.raw_records(run.run_id, "training"):
                if data["record_id"] not in done:
                    record = TrainingRecord.from_dict(data)
                    record.status = "interrupted"
                    store.put_record(record)
                    records.append(record)
    finally:
        run = replace(run, status=status, n_records=len(records))
        if store is not None and join_run is None:
            store.finish_run(run.run_id, status)
        if json_path is not None:
            dump_json(run_document(run, records, partial=status != "complete"), json_path)  # type: ignore[arg-type]
    return run, records


# -- several processes (DDP through torchrun) and their scaling ------------------------------
def load_baseline(path: str | Path, config: TrainConfig, device_type: str) -> TrainingRecord:
    """The single-process record to compare an N-process run with, from a JSON file written
    by ``devicebench train --json`` (or ``devicebench report --format json``).

    It must be a finished single-process run of the same model, batch size, image size,
    loader, precision and compile setting on the same device type, with epochs.

    Raises:
        UserError: the file cannot be read or holds no such record.
    """
    import json

    from devicebench.errors import UserError

    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"--baseline {path}: cannot read it as JSON ({exc})") from None
    raw = doc.get("records", []) + doc.get("training", []) if isinstance(doc, dict) and "records" in doc else [doc]
    wanted = {"model": config.model, "batch_size": config.batch_size}
    same = ("image_size", "loader", "amp", "compile")
    for data in raw:
        if not isinstance(data, dict) or data.get("kind") != "training":
            continue
        record = TrainingRecord.from_dict(data)
        if (record.ok and record.epochs and record.device.type == device_type
                and int(record.settings.get("nproc", 1)) == 1
                and all(getattr(record, k) == v for k, v in wanted.items())
                and all(record.settings.get(k) == getattr(config, k) for k in same)):
            return record
    raise UserError(f"--baseline {path}: no finished single-process {config.model} record on {device_type} with "
                    f"batch {config.batch_size}, image size {config.image_size}, loader {config.loader}, "
                    f"amp {config.amp}, compile {config.compile}")


def execute_scaling(
    config: TrainConfig,
    spec: DeviceSpec,
    nproc: int,
    *,
    command: str,
    baseline: TrainingRecord | None = None,
    store: Store | None = None,
    json_path: str | Path | None = None,
    on_start: Callable[[DeviceSpec, int], None] | None = None,
    on_record: Callable[[TrainingRecord], None] | None = None,
) -> tuple[RunInfo, list[TrainingRecord]]:
    """Train ``config`` with ``nproc`` DDP processes on ``spec``'s device type, and report
    its scaling over one process (``settings["scaling"]`` of the N-process record).

    Without ``baseline`` the single-process run is trained first, in the same run, on the
    same device with the same per-process batch (one after the other, never side by side).

    Raises:
        DatasetError: the dataset cannot be read.
        ConfigError: ``nproc`` cannot run on this device type here.
    """
    from devicebench.measure.distributed import plan_distributed, scaling_of, train_distributed

    # --threads, when given, holds for the single process and for each rank alike; else one
    # process uses torch's default (every core) and each rank cores // nproc.
    plan = plan_distributed(spec.type, nproc, config.threads)
    measured: list[TrainingRecord] = []

    def launch_one(device_config: TrainConfig) -> WorkerResult:
        if on_start is not None:
            on_start(spec, 1)
        return run_in_worker(train_on_device, device_config, inherit_stderr=True)

    def launch_ddp(device_config: TrainConfig) -> WorkerResult:
        if on_start is not None:
            on_start(spec, nproc)
        result = train_distributed(replace(device_config, device=spec.type), plan)
        base = baseline or next((r for r in measured if r.ok), None)
        if result.ok and base is not None:
            scaling = scaling_of(base, result.value)
            if scaling is not None:
                result.value.settings["scaling"] = scaling.to_dict()
        return result

    def keep(record: TrainingRecord) -> None:
        measured.append(record)
        if on_record is not None:
            on_record(record)

    devices = [spec] if baseline is not None else [spec, spec]
    launchers = [launch_ddp] if baseline is not None else [launch_one, launch_ddp]
    return execute_training(config, devices, command=command, store=store, json_path=json_path,
                            on_record=keep, launchers=launchers)
