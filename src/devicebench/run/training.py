"""Training runs: one worker per device (or N data-parallel ranks), each record stored at once.

The training counterpart of :mod:`devicebench.run.inference`. Each device trains in its own fresh
process (nothing carries over: thread pools, the CUDA context, compiled graphs), one after
the other, so that they never compete for the CPU. In the worker, :func:`train_job` runs the
training loop (:func:`~devicebench.measure.training.train_on_device`) and rewrites the record
in the store after every epoch from the loop's ``on_epoch`` callback, so Ctrl-C (or a kill)
keeps every finished epoch; progress goes to the callback the caller gave (the CLI draws it).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import platformdirs

from devicebench.devices.discovery import DeviceSpec, parse_devices
from devicebench.devices.sysinfo import usable_cores
from devicebench.errors import ConfigError, UserError
from devicebench.launchers.ranks import DistributedPlan, run_ranks
from devicebench.launchers.worker import WorkerResult, run_in_worker
from devicebench.measure.shard import Shard
from devicebench.measure.training import StepProgress, TrainConfig, TrainingOutcome, train_on_device
from devicebench.results.records import DeviceRef, RunInfo, TrainingRecord
from devicebench.results.scaling import scaling_of
from devicebench.results.store import Store
from devicebench.run.context import RunContext, failure_message
from devicebench.workloads.datasets import open_dataset
from devicebench.workloads.synthetic import make_synthetic

__all__ = ["SYNTHETIC", "synthetic_dataset", "default_checkpoint_dir", "resolve_data", "TrainJob", "train_job",
           "execute_training", "plan_distributed", "distributed_device", "train_distributed", "execute_scaling", "load_baseline"]

#: Receives the training loop's progress (in the worker): the CLI passes a picklable one.
Progress = Callable[[StepProgress], None]

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


@dataclass(frozen=True)
class TrainJob:
    """What a training worker (or each data-parallel rank) is asked to do.

    Attributes:
        config: the training run, on its device.
        run_id: the run the record belongs to.
        db: the store to rewrite the record in after every epoch (None: not stored).
        record_id: the record's id, the same at every rewrite.
        progress: receives the loop's progress in the worker (must pickle).
    """

    config: TrainConfig
    run_id: str
    db: str | None = None
    record_id: str = ""
    progress: Progress | None = None


def train_job(job: TrainJob, shard: Shard | None = None) -> TrainingRecord:
    """Train in this process and return the record, rewriting it in ``job.db`` after every
    epoch (runs in the worker; rank 0 does it in a data-parallel run)."""
    record_id = job.record_id or uuid.uuid4().hex
    store = Store(job.db) if job.db else None

    def persist(outcome: TrainingOutcome) -> None:
        if store is not None:
            store.put_record(TrainingRecord.from_outcome(job.run_id, outcome, record_id=record_id))

    try:
        outcome = train_on_device(job.config, shard, on_epoch=persist, on_step=job.progress)
        persist(outcome)
    finally:
        if store is not None:
            store.close()
    return TrainingRecord.from_outcome(job.run_id, outcome, record_id=record_id)


def _failed(config: TrainConfig, run_id: str, error: str, detail: str) -> TrainingRecord:
    spec = config.device
    return TrainingRecord(run_id=run_id, model=config.model,
                          device=DeviceRef(spec.type, spec.index, spec.torch_device),
                          batch_size=config.batch_size, precision="amp" if config.amp else "fp32",
                          status="crashed", message=failure_message(error, detail),
                          target_acc=config.target_acc, settings=config.settings())


#: Starts one device's training job and returns what came back (a worker by default).
Launcher = Callable[[TrainJob], WorkerResult]


def _in_worker(job: TrainJob) -> WorkerResult:
    return run_in_worker(train_job, job, inherit_stderr=True)


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
    launchers: Sequence[Launcher | None] | None = None,
    progress: Progress | None = None,
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
    index = open_dataset(config.data, classes=config.classes, train_per_class=config.train_per_class)
    del index  # only validated here; each worker indexes it again
    with RunContext[TrainingRecord](command, store=store, json_path=json_path, join=join_run) as ctx:
        try:
            for i, spec in enumerate(devices):
                launch = launchers[i] if launchers is not None else None
                job = TrainJob(replace(config, device=spec), ctx.run.run_id,
                               db=str(store.path) if store is not None else None,
                               record_id=uuid.uuid4().hex, progress=progress)
                if on_start is not None:
                    on_start(spec)
                if in_process and launch is None:
                    record = train_job(job)
                else:
                    result = (launch or _in_worker)(job)
                    record = (result.value if result.ok and isinstance(result.value, TrainingRecord)
                              else _failed(job.config, ctx.run.run_id, result.error, result.detail))
                ctx.keep(record)
                if on_record is not None:
                    on_record(record)
                if record.status == "interrupted":
                    raise KeyboardInterrupt
            ctx.status = "complete" if all(r.ok for r in ctx.records) else "failed"
        except KeyboardInterrupt:
            ctx.status = "interrupted"
            _keep_unfinished(ctx)
    return ctx.run, ctx.records


def _keep_unfinished(ctx: RunContext[TrainingRecord]) -> None:
    """A worker may have been stopped before it could say so: whatever it stored after its
    last finished epoch is kept, marked interrupted."""
    if ctx.store is None:
        return
    done = {r.record_id for r in ctx.records}
    for data in ctx.store.raw_records(ctx.run.run_id, "training"):
        if data["record_id"] not in done:
            record = TrainingRecord.from_dict(data)
            record.status = "interrupted"
            ctx.keep(record)


# -- several processes (DDP, ranks started by launchers/ranks.py) and their scaling ---------
def plan_distributed(device_type: str, nproc: int, threads: int | None = None) -> DistributedPlan:
    """Check that ``nproc`` processes can train on ``device_type`` here, and lay them out.

    On the CPU each rank needs a core of its own (more ranks than cores would time the
    scheduler, not DDP), and gets ``max(1, cores // nproc)`` threads unless ``threads`` is
    given. On CUDA each rank needs a GPU of its own.

    Raises:
        ConfigError: ``nproc`` < 1, more ranks than cores or GPUs, or a device type that
            torch.distributed cannot serve here.
    """
    if nproc < 1:
        raise ConfigError(f"--nproc must be >= 1, got {nproc}")
    cores = usable_cores()
    if device_type == "cpu":
        if nproc > cores:
            raise ConfigError(f"--nproc {nproc} on the CPU needs {nproc} cores, this machine lets us use {cores}: "
                              "more ranks than cores would time the scheduler, not DDP")
        return DistributedPlan("cpu", nproc, "gloo", threads or max(1, cores // nproc))
    if device_type == "cuda":
        import torch

        gpus = torch.cuda.device_count()
        if nproc > gpus:
            raise ConfigError(f"--nproc {nproc} on CUDA needs one GPU per process, {gpus} found")
        import torch.distributed as dist

        if not dist.is_available() or not dist.is_nccl_available():
            raise ConfigError("--nproc on CUDA needs torch.distributed with NCCL, which this torch build lacks")
        return DistributedPlan("cuda", nproc, "nccl", threads or max(1, cores // nproc))
    raise ConfigError(f"--nproc supports the cpu (gloo) and cuda (nccl) devices, not {device_type}")


def distributed_device(text: str) -> DeviceSpec:
    """The one device type a data-parallel run uses: ``all`` means CUDA when there is one.

    Raises:
        ConfigError: several device types named.
        DeviceUnavailableError: a device this machine does not have.
    """
    specs = parse_devices(text)
    if text.strip().lower() in ("", "all"):
        return next((s for s in specs if s.type == "cuda"), specs[0])
    if len({s.type for s in specs}) != 1:
        raise ConfigError("--nproc trains on one device type: give --device cpu or --device cuda")
    return specs[0]


def _rank_job(job: TrainJob) -> TrainingRecord | None:
    """One data-parallel rank (its process group already joined): train this rank's shard.
    Rank 0 alone persists the record, shows progress and answers."""
    import torch
    import torch.distributed as dist

    rank, world = dist.get_rank(), dist.get_world_size()
    config = job.config
    if config.device.type == "cuda":
        config = replace(config, device=DeviceSpec("cuda", torch.cuda.current_device()))
    threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    rank_job = replace(job, config=replace(config, threads=threads), db=job.db if rank == 0 else None,
                       progress=job.progress if rank == 0 else None)
    record = train_job(rank_job, Shard(rank, world, dist.get_backend()))
    record.settings["threads_per_rank"] = threads
    return record if rank == 0 else None


def train_distributed(job: TrainJob | TrainConfig, plan: DistributedPlan, *, timeout: float | None = None) -> WorkerResult:
    """Train with ``plan.nproc`` DDP processes (:func:`~devicebench.launchers.ranks.run_ranks`) and wait for them.

    Returns:
        A :class:`WorkerResult` whose value is rank 0's :class:`TrainingRecord`, or the
        first failing rank's error.
    """
    if isinstance(job, TrainConfig):
        job = TrainJob(job, run_id="")
    job = replace(job, config=replace(job.config, device=DeviceSpec(plan.device_type, None if plan.device_type == "cpu" else 0)))
    return run_ranks(_rank_job, job, plan, timeout=timeout)


def load_baseline(path: str | Path, config: TrainConfig, device_type: str) -> TrainingRecord:
    """The single-process record to compare an N-process run with, from a JSON file written
    by ``devicebench train --json`` (or ``devicebench report --format json``).

    It must be a finished single-process run of the same model, batch size, image size,
    loader, precision and compile setting on the same device type, with epochs.

    Raises:
        UserError: the file cannot be read or holds no such record.
    """
    import json

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
    plan: DistributedPlan,
    *,
    command: str,
    baseline: TrainingRecord | None = None,
    store: Store | None = None,
    json_path: str | Path | None = None,
    on_start: Callable[[DeviceSpec, int], None] | None = None,
    on_record: Callable[[TrainingRecord], None] | None = None,
    progress: Progress | None = None,
) -> tuple[RunInfo, list[TrainingRecord]]:
    """Train ``config`` with ``plan.nproc`` DDP processes on ``spec``'s device type (the plan
    from :func:`plan_distributed`), and report its scaling over one process
    (``settings["scaling"]`` of the N-process record).

    Without ``baseline`` the single-process run is trained first, in the same run, on the
    same device with the same per-process batch (one after the other, never side by side).

    Raises:
        DatasetError: the dataset cannot be read.
    """
    measured: list[TrainingRecord] = []

    def launch_one(job: TrainJob) -> WorkerResult:
        if on_start is not None:
            on_start(spec, 1)
        return _in_worker(job)

    def launch_ddp(job: TrainJob) -> WorkerResult:
        if on_start is not None:
            on_start(spec, plan.nproc)
        result = train_distributed(job, plan)
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
                            on_record=keep, launchers=launchers, progress=progress)
