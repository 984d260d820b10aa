"""Train an image classifier on one device and keep one row per epoch (seed 001's TinyImage).

Read it top to bottom like nanoGPT's ``train.py``: configuration, data, model, optimiser,
then the loop. Everything that could make two devices' curves differ for reasons other than
the hardware is pinned: the same seed, the same initial weights (built on the CPU, then
moved), the same data order and the same augmentation draws (both from CPU generators keyed
by seed and epoch). What remains is floating-point rounding, which differs between devices.

Timing, per training step (all host clock, ``perf_counter``):

* **data wait**: from asking the loader for the next batch until the batch is on the device
  (decode in DataLoader workers, collate, pinned host->device copy issued ``non_blocking``).
  A large share means the device was starved for data.
* **compute**: from there until the loss is read back with ``.item()``, which waits for the
  device: forward, backward and optimiser step, plus augmentation done on the device.

The loss is read every step (kept as ``step_losses``), so the device is synchronised once per
step; that is also what makes the host clock honest on an asynchronous GPU.

This module runs inside a worker process (one per device, see :func:`train_on_device`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from devicebench.devices.discovery import DeviceSpec
from devicebench.devices.timers import synchronize
from devicebench.errors import ConfigError, MeasurementError
from devicebench.results.records import DeviceRef, EpochRow, TrainingRecord
from devicebench.workloads.datasets import MEAN, STD, ImageDataset, collate_skip_broken, load_in_memory, open_dataset
from devicebench.workloads.registry import create_model

__all__ = ["TrainConfig", "Shard", "train_on_device", "build_classifier", "checkpoint_path", "LOADERS"]

LOADERS = ("stream", "memory")


@dataclass(frozen=True)
class TrainConfig:
    """One training run on one device.

    Attributes:
        data: dataset folder or zip (the CLI turns ``synthetic`` into a generated folder).
        loader: ``stream`` (DataLoader with ``workers`` processes, pinned memory) or
            ``memory`` (every image decoded once into a uint8 tensor kept on the device).
        warmup_steps: linear learning-rate warm-up; then cosine decay to 10% over ``epochs``.
        stop_after: stop after this many epochs of this run (tests, time-boxed runs); the
            schedule still follows ``epochs``, so a resumed run continues the same curve.
        checkpoint_dir: where a checkpoint is written after each epoch (None: not kept).
        db, run_id: when set, the record is rewritten in this store after every epoch.
    """

    data: str
    model: str = "tinycnn"
    device: str = "cpu"
    epochs: int = 4
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_steps: int = 20
    seed: int = 0
    amp: bool = False
    compile: bool = False
    target_acc: float | None = None
    classes: int | None = None
    train_per_class: int | None = None
    loader: str = "stream"
    workers: int = 2
    augment: bool = True
    threads: int | None = None
    image_size: int = 64
    checkpoint_dir: str | None = None
    resume: bool = False
    stop_after: int | None = None
    db: str | None = None
    run_id: str = ""
    progress: bool = False

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("--epochs and --batch-size must be >= 1")
        if not self.lr > 0:
            raise ConfigError(f"--lr must be > 0, got {self.lr}")
        if self.loader not in LOADERS:
            raise ConfigError(f"--loader must be one of {', '.join(LOADERS)}, got {self.loader!r}")
        if self.target_acc is not None and not 0 < self.target_acc <= 1:
            raise ConfigError(f"--target-acc is a fraction in (0, 1], got {self.target_acc}")
        if self.workers < 0:
            raise ConfigError("--workers must be >= 0")

    def settings(self) -> dict[str, Any]:
        """What is recorded with the result (everything that changes the numbers)."""
        keep = ("epochs", "lr", "weight_decay", "warmup_steps", "seed", "amp", "compile", "classes",
                "train_per_class", "loader", "workers", "augment", "threads", "image_size", "resume")
        return {k: getattr(self, k) for k in keep} | {"optimizer": "AdamW", "schedule": "warmup+cosine"}


def checkpoint_path(config: TrainConfig, nproc: int = 1) -> Path | None:
    """One checkpoint file per (data, model, device type, seed, batch, lr, amp...) setting,
    and per number of data-parallel processes (``nproc`` > 1 trains another curve)."""
    if config.checkpoint_dir is None:
        return None
    key = {k: v for k, v in asdict(config).items()
           if k not in ("stop_after", "db", "run_id", "progress", "resume", "checkpoint_dir", "target_acc", "workers")}
    key["data"] = str(Path(config.data).resolve())
    if nproc > 1:
        key["nproc"] = nproc
        key.pop("threads", None)  # set per rank by the launcher
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    device = config.device.replace(":", "")
    return Path(config.checkpoint_dir) / f"{config.model}-{device}-{digest}.pt"


def build_classifier(name: str, num_classes: int, seed: int) -> tuple[nn.Module, int]:
    """A registered model with its last linear layer sized for ``num_classes``.

    Built on the CPU right after seeding, so every device starts from the same weights.

    Returns:
        The module and its parameter count.
    """
    torch.manual_seed(seed)
    module = create_model(name).module
    last_name, last = None, None
    for child_name, child in module.named_modules():
        if isinstance(child, nn.Linear):
            last_name, last = child_name, child
    if last is None or last_name is None:
        raise ConfigError(f"model {name!r} has no linear classifier to train")
    if last.out_features != num_classes:
        parent = module.get_submodule(last_name.rpartition(".")[0]) if "." in last_name else module
        setattr(parent, last_name.rpartition(".")[2], nn.Linear(last.in_features, num_classes))
    return module, sum(p.numel() for p in module.parameters())


# -- batches ----------------------------------------------------------------------------
class _OrderSampler(torch.utils.data.Sampler):
    """Yields batches of indices in an order set before each epoch (from the CPU generator),
    so that every device and the stream and memory loaders see the same batches."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.order: list[int] = []

    def __iter__(self):  # type: ignore[no-untyped-def]
        for i in range(0, len(self.order), self.batch_size):
            yield self.order[i:i + self.batch_size]

    def __len__(self) -> int:
        return math.ceil(len(self.order) / self.batch_size)


@dataclass(frozen=True)
class Shard:
    """This process's part of a data-parallel run (DistributedDataParallel, see
    :mod:`devicebench.measure.distributed`). The default, rank 0 of 1, is a plain run: every
    method below is then a no-op, so one loop serves both.

    Attributes:
        rank: this process's rank (0 evaluates, checkpoints and writes the record).
        world_size: number of processes; the global batch is ``world_size`` x the batch size.
        backend: the process group's backend (``gloo`` on CPU, ``nccl`` on CUDA).
    """

    rank: int = 0
    world_size: int = 1
    backend: str = ""

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def take(self, order: torch.Tensor) -> torch.Tensor:
        """This rank's part of the epoch's order, as ``DistributedSampler(drop_last=False)``
        cuts it: padded with its own first items to a multiple of ``world_size`` (so every
        rank takes the same number of steps, which DDP needs), then every ``world_size``-th
        item from ``rank``. The ranks' parts together are the single-process order."""
        if self.world_size == 1:
            return order
        padding = (-len(order)) % self.world_size
        if padding:
            order = torch.cat([order, order[:padding].repeat(math.ceil(padding / max(1, len(order))))[:padding]])
        return order[self.rank::self.world_size]

    def wrap(self, model: nn.Module, spec: DeviceSpec) -> nn.Module:
        """The module the training steps call: ``model`` itself, or DDP around it (which
        broadcasts rank 0's weights once, then all-reduces the gradients in backward)."""
        if self.world_size == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [spec.index or 0] if spec.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def sum(self, values: list[float], device: torch.device) -> list[float]:
        """Sums of ``values`` over all ranks (the epoch's loss sum, correct, seen...)."""
        if self.world_size == 1:
            return values
        import torch.distributed as dist

        total = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(total)
        return total.tolist()

    def gather(self, value: Any) -> list[Any]:
        """``value`` of every rank, in rank order (on every rank)."""
        if self.world_size == 1:
            return [value]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, value)
        return out

    def barrier(self) -> None:
        """Wait until every rank is here (others wait while rank 0 evaluates)."""
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()

    def settings(self, batch_size: int) -> dict[str, Any]:
        if self.world_size == 1:
            return {}
        return {"nproc": self.world_size, "backend": self.backend, "per_rank_batch_size": batch_size,
                "global_batch_size": batch_size * self.world_size,
                "data_split": "DistributedSampler-equivalent: each epoch's seeded order padded to a "
                              "multiple of nproc, rank r takes items r, r+nproc, ...",
                "lr_note": "the learning rate is not scaled with the global batch"}


def _on_device_transform(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
                         gen: torch.Generator | None) -> torch.Tensor:
    """uint8 -> normalised float, on the device; with ``gen``, a random horizontal flip per
    image and a random shift of up to 4 pixels per batch (draws come from the CPU ``gen``,
    so they are the same on every device)."""
    x = x.float().div_(255)
    if gen is not None and len(x):
        flip = (torch.rand(len(x), generator=gen) < 0.5).to(x.device)
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
        dx, dy = (int(v) for v in torch.randint(-4, 5, (2,), generator=gen))
        x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    return (x - mean) / std


def _lr_at(step: int, total: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to 10% of ``lr`` (a function of the step alone,
    so a resumed run gets exactly the rates it would have had)."""
    warmup = min(config.warmup_steps, max(1, total // 10))  # short runs: a short warm-up
    if step < warmup:
        return config.lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def _amp_dtype(device: DeviceSpec, amp: bool) -> torch.dtype | None:
    if not amp:
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16  # CPU (and MPS/XPU) autocast: bf16


def _progress(config: TrainConfig, total: int):  # type: ignore[no-untyped-def]
    """A progress bar on the terminal, redrawn only when the loop calls refresh (no timer
    thread: nothing may run beside the timed work)."""
    if not config.progress:
        return None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True, highlight=False)
    if not console.is_terminal:
        return None
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, auto_refresh=False, transient=True)


# -- the run ----------------------------------------------------------------------------
def train_on_device(config: TrainConfig, shard: Shard | None = None) -> TrainingRecord:
    """Train ``config.model`` on ``config.device`` and return its record.

    Meant to run in its own worker process (:func:`~devicebench.measure.worker.run_in_worker`).
    A Ctrl-C (or SIGTERM) during training ends it with status ``interrupted`` and every
    finished epoch kept.

    With a ``shard`` of a data-parallel run (the process group already initialised), this
    process trains on its part of each epoch and DDP all-reduces the gradients; the epoch's
    training loss, accuracy and samples are summed over the ranks; rank 0 alone evaluates,
    checkpoints and writes to the store, and only its record is complete (the others have
    no validation numbers).

    Raises:
        DatasetError: the dataset cannot be read.
        ConfigError: a setting cannot work (no classifier layer, bad value).
    """
    import signal

    from devicebench.devices.sysinfo import collect_environment

    # SIGTERM (the parent stopping us after its own Ctrl-C) ends training like a Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    shard = shard or Shard()
    spec = DeviceSpec.parse(config.device)
    device = torch.device(spec.torch_device)
    if config.threads:
        torch.set_num_threads(config.threads)

    # ---- data: indexed once; the same item order on every device --------------------
    index = open_dataset(config.data, classes=config.classes, train_per_class=config.train_per_class)
    num_classes, size = index.num_classes, config.image_size
    pin = spec.type == "cuda"
    skipped_at_load = 0
    if config.loader == "memory":
        # Decode once, keep uint8 (4x smaller than float) on the device; normalise per batch.
        train_x, train_y, broken_train = load_in_memory(index.source, index.train, size=size, workers=config.workers)
        val_x, val_y, broken_val = load_in_memory(index.source, index.val, size=size, workers=config.workers)
        skipped_at_load = broken_train + broken_val
        train_x, train_y = train_x.to(device), train_y.to(device)
        val_x, val_y = val_x.to(device), val_y.to(device)
        n_train = len(train_y)
    else:
        train_set = ImageDataset(index.source, index.train, size)
        n_train = len(train_set)
        sampler = _OrderSampler(config.batch_size)
        # The loaders get their own generator: otherwise starting workers draws from the
        # global RNG, which dropout also uses, and a resumed run would drift from the curve.
        common = dict(num_workers=config.workers, pin_memory=pin, collate_fn=collate_skip_broken,
                      persistent_workers=config.workers > 0,
                      generator=torch.Generator().manual_seed(config.seed))
        train_loader = torch.utils.data.DataLoader(train_set, batch_sampler=sampler, **common)
        val_loader = torch.utils.data.DataLoader(ImageDataset(index.source, index.val, size),
                                                 batch_size=config.batch_size, shuffle=False, **common)
    mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=device).view(1, 3, 1, 1)

    # ---- model and optimiser: same initial weights everywhere ------------------------
    model, parameters = build_classifier(config.model, num_classes, config.seed)
    model.to(device)
    decay = [p for p in model.parameters() if p.ndim >= 2]  # no weight decay on BN and biases
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=config.lr)
    amp_dtype = _amp_dtype(spec, config.amp)
    scaler = torch.amp.GradScaler(spec.type, enabled=amp_dtype == torch.float16)
    train_forward = shard.wrap(model, spec)  # DDP around the model with several processes
    forward = torch.compile(train_forward) if config.compile else train_forward
    # Rank 0 evaluates alone, outside DDP (whose forward may talk to the other ranks).
    evaluate_with = forward if shard.world_size == 1 else model
    n_local = len(shard.take(torch.arange(n_train)))
    steps_per_epoch = math.ceil(n_local / config.batch_size)
    total_steps = steps_per_epoch * config.epochs

    settings = config.settings() | {"parameters": parameters, "threads_used": torch.get_num_threads(),
                                    "amp_dtype": str(amp_dtype).replace("torch.", "") if amp_dtype else None}
    settings |= shard.settings(config.batch_size)
    if config.amp and spec.type == "cpu":
        settings["amp_note"] = "CPU autocast to bf16: fast only where the CPU has bf16 instructions (AVX-512 BF16/AMX)"
    precision = f"amp-{settings['amp_dtype']}" if amp_dtype else "fp32"
    record = TrainingRecord(
        run_id=config.run_id, model=config.model,
        device=DeviceRef(spec.type, spec.index, _device_name(spec)),
        batch_size=config.batch_size, precision=precision, status="running",
        dataset=index.describe() | {"image_size": size},
        target_acc=config.target_acc, settings=settings,
        environment=collect_environment().to_dict(),
    )
    store = _open_store(config) if shard.is_main else None

    # ---- resume: weights, optimiser, curve so far and the time it took ---------------
    start_epoch, wall_before = 0, 0.0
    ckpt = checkpoint_path(config, shard.world_size)
    if config.resume and ckpt is not None and ckpt.is_file():
        state = torch.load(ckpt, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng_cpu"])
        if spec.type == "cuda" and "rng_cuda" in state:
            torch.cuda.set_rng_state(state["rng_cuda"], spec.index or 0)
        if "rng_ranks" in state:  # several processes: each rank's own dropout draws
            cpu_rng, cuda_rng = state["rng_ranks"][shard.rank]
            torch.set_rng_state(cpu_rng)
            if cuda_rng is not None:
                torch.cuda.set_rng_state(cuda_rng, spec.index or 0)
        start_epoch, wall_before = int(state["epoch"]), float(state["wall_s"])
        record.epochs = [EpochRow(**row) for row in state["rows"]]
        record.step_losses = list(state["step_losses"])
        record.time_to_target_s = state.get("time_to_target_s")
        record.settings["resumed_from_epoch"] = start_epoch
    elif config.resume:
        record.settings["resumed_from_epoch"] = 0
        record.message = "no checkpoint to resume from: trained from the start"

    loss_fn = nn.CrossEntropyLoss()
    last_epoch = config.epochs if config.stop_after is None else min(config.epochs, start_epoch + config.stop_after)
    progress = _progress(config, steps_per_epoch)
    t_start = time.perf_counter()
    try:
        for epoch in range(start_epoch, last_epoch):
            # Same order and augmentation draws on every device: CPU generators keyed by
            # (seed, epoch), so a resumed run draws what the uninterrupted one would have.
            order_gen = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
            aug_gen = torch.Generator().manual_seed(config.seed * 100_003 + epoch + 50_000) if config.augment else None
            order = shard.take(torch.randperm(n_train, generator=order_gen))  # this rank's part
            model.train()
            loss_sum = correct = seen = skipped = 0
            data_wait = compute = 0.0
            task = None
            if progress is not None:
                progress.start()
                task = progress.add_task(f"{spec} epoch {epoch + 1}/{config.epochs}", total=steps_per_epoch)
            if config.loader == "stream":
                sampler.order = order.tolist()
                batches = iter(train_loader)
            t_epoch = time.perf_counter()
            for step in range(steps_per_epoch):
                t0 = time.perf_counter()
                if config.loader == "stream":
                    x, y, n_broken = next(batches)
                    skipped += n_broken
                    x = x.to(device, non_blocking=True)
                    y = y.to(device, non_blocking=True)
                else:
                    idx = order[step * config.batch_size:(step + 1) * config.batch_size].to(device)
                    x, y = train_x[idx], train_y[idx]
                t1 = time.perf_counter()
                if len(y) == 0:  # a batch of only unreadable files
                    if shard.world_size > 1:  # skipping would leave the other ranks waiting in DDP
                        raise MeasurementError("a batch held only unreadable images: run `devicebench data "
                                               "inspect` and remove them, or train with a larger batch")
                    data_wait += t1 - t0
                    continue
                lr = _lr_at(epoch * steps_per_epoch + step, total_steps, config)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                x = _on_device_transform(x, mean, std, aug_gen)
                with torch.autocast(spec.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    logits = forward(x)
                    loss = loss_fn(logits.float(), y)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                # .item() waits for the device: the step is finished when the clock is read.
                loss_value = loss.item()
                batch_correct = int((logits.argmax(1) == y).sum().item())
                t2 = time.perf_counter()
                data_wait += t1 - t0
                compute += t2 - t1
                record.step_losses.append(loss_value)
                loss_sum += loss_value * len(y)
                correct += batch_correct
                seen += len(y)
                if progress is not None and task is not None and (step % max(1, steps_per_epoch // 20) == 0
                                                                 or step == steps_per_epoch - 1):
                    progress.update(task, completed=step + 1,
                                    description=f"{spec} epoch {epoch + 1}/{config.epochs} loss {loss_value:.3f}")
                    progress.refresh()
            synchronize(spec)
            epoch_s = time.perf_counter() - t_epoch
            if progress is not None:
                progress.stop()
            # Several processes: the epoch's numbers are those of all ranks together.
            loss_sum, correct, seen, skipped = shard.sum([loss_sum, correct, seen, skipped], device)
            seen, correct, skipped = int(seen), int(correct), int(skipped)

            t_val = time.perf_counter()
            val_loss = top1 = top5 = None
            if shard.is_main:
                val_loss, top1, top5 = _evaluate(evaluate_with, config, spec, amp_dtype, mean, std,
                                                 (val_x, val_y) if config.loader == "memory" else val_loader)
            val_s = time.perf_counter() - t_val
            wall = wall_before + time.perf_counter() - t_start
            row = EpochRow(
                epoch=epoch + 1, train_loss=loss_sum / max(1, seen), train_acc=correct / max(1, seen),
                val_loss=val_loss, val_top1=top1, val_top5=top5, epoch_s=epoch_s,
                samples_per_s=seen / epoch_s if epoch_s > 0 else 0.0,
                data_wait_s=data_wait, compute_s=compute, wall_s=wall, val_s=val_s,
                steps=steps_per_epoch, lr=lr if steps_per_epoch else None,
                skipped_images=skipped + (skipped_at_load if epoch == start_epoch else 0),
            )
            record.epochs.append(row)
            if (config.target_acc is not None and record.time_to_target_s is None
                    and top1 is not None and top1 >= config.target_acc):
                record.time_to_target_s = wall
            record.total_s = wall
            # Each rank's random state (the ranks' dropout draws differ once they have done
            # different work), so that a resumed run continues the same curve.
            rng_ranks = shard.gather((torch.get_rng_state(), torch.cuda.get_rng_state(spec.index or 0)
                                      if spec.type == "cuda" else None)) if ckpt is not None else []
            if shard.is_main:
                _save_checkpoint(ckpt, model, optimizer, scaler, record, epoch + 1, wall,
                                 rng_ranks if shard.world_size > 1 else None)
            if store is not None:
                store.put_record(record)
            shard.barrier()
        record.status = "ok"
    except KeyboardInterrupt:
        record.status = "interrupted"
        record.message = (record.message + "; " if record.message else "") + \
            f"interrupted after {len(record.epochs)} finished epoch(s)"
    finally:
        if progress is not None:
            progress.stop()
    if skipped_at_load:
        record.dataset["skipped_images"] = skipped_at_load
    record.dataset["skipped_images"] = max(record.dataset.get("skipped_images", 0),
                                           max((e.skipped_images for e in record.epochs), default=0))
    if store is not None:
        store.put_record(record)
        store.close()
    return record


def _evaluate(forward, config: TrainConfig, spec: DeviceSpec, amp_dtype, mean, std, data) -> tuple[float | None, float | None, float | None]:  # type: ignore[no-untyped-def]
    """Validation loss, top-1 and top-5 accuracy (no augmentation, no gradients)."""
    model = forward
    model.eval()
    loss_sum = 0.0
    top1 = top5 = seen = 0
    if isinstance(data, tuple):
        xs, ys = data
        batches = ((xs[i:i + config.batch_size], ys[i:i + config.batch_size], 0)
                   for i in range(0, len(ys), config.batch_size))
    else:
        batches = iter(data)
    device = torch.device(spec.torch_device)
    with torch.no_grad():
        for x, y, _broken in batches:
            if len(y) == 0:
                continue
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with torch.autocast(spec.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                logits = model(_on_device_transform(x, mean, std, None)).float()
            loss_sum += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
            k = min(5, logits.shape[1])
            best = logits.topk(k, dim=1).indices
            top1 += int((best[:, 0] == y).sum())
            top5 += int((best == y[:, None]).any(1).sum())
            seen += len(y)
    if seen == 0:
        return None, None, None
    return loss_sum / seen, top1 / seen, top5 / seen


def _save_checkpoint(path: Path | None, model: nn.Module, optimizer, scaler, record: TrainingRecord,  # type: ignore[no-untyped-def]
                     epoch: int, wall: float, rng_ranks: list[Any] | None = None) -> None:
    """Everything needed to continue the same curve, written atomically."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
        "rng_cpu": torch.get_rng_state(), "epoch": epoch, "wall_s": wall,
        "rows": [asdict(r) for r in record.epochs], "step_losses": list(record.step_losses),
        "time_to_target_s": record.time_to_target_s,
    }
    if rng_ranks is not None:
        state["rng_ranks"] = rng_ranks
    if record.device.type == "cuda":
        state["rng_cuda"] = torch.cuda.get_rng_state(record.device.index or 0)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _open_store(config: TrainConfig):  # type: ignore[no-untyped-def]
    if not config.db or not config.run_id:
        return None
    from devicebench.results.store import Store

    return Store(config.db)


def _device_name(spec: DeviceSpec) -> str:
    if spec.type == "cuda":
        return torch.cuda.get_device_name(spec.index or 0)
    if spec.type == "cpu":
        from devicebench.devices.sysinfo import cpu_info

        return cpu_info().model or "cpu"
    return spec.torch_device


def with_device(config: TrainConfig, device: str) -> TrainConfig:
    """The same run on another device."""
    return replace(config, device=device)
