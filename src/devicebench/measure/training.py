"""Train an image classifier on one device and keep one row per epoch (seed 001's TinyImage).

Read it top to bottom like nanoGPT's ``train.py``: configuration, data, model, optimiser,
then the loop. Everything that could make two devices' curves differ for reasons other than
the hardware is pinned: the same seed, the same initial weights (built on the CPU, then
moved), the same data order, the same augmentation draws and the same dropout masks (all
from CPU generators keyed by seed, epoch and step), and fp32 is IEEE fp32 on every device
(TF32 off). What remains is floating-point rounding, which differs between devices.

Timing, per training step (all host clock, ``perf_counter``):

* **data wait**: from asking the loader for the next batch until the batch is on the device
  (decode in DataLoader workers, collate, the pinned host->device copy issued
  ``non_blocking`` and then waited for: the device is synchronised before the clock is read,
  so the copy counts here, not in compute). A large share means the device was starved.
* **compute**: from there until the loss is read back with ``.item()``, which waits for the
  device: forward, backward and optimiser step, plus augmentation done on the device.

The loss is read every step (kept as ``step_losses``), so the device is synchronised once per
step; that is also what makes the host clock honest on an asynchronous GPU.

This module runs inside a worker process (one per device, see :func:`train_on_device`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from devicebench.devices.discovery import DeviceRef, DeviceSpec
from devicebench.devices.prepare import set_fp32_math, use_device
from devicebench.devices.timers import synchronize
from devicebench.errors import ConfigError, MeasurementError
from devicebench.workloads.registry import create_model

if TYPE_CHECKING:
    # torch, the data readers, checkpoints and shards are imported where training starts:
    # the records built on EpochRow and TrainingOutcome are read without torch.
    import torch
    from torch import nn

    from devicebench.measure.checkpoint import checkpoint_path
    from devicebench.measure.shard import Shard

__all__ = ["TrainConfig", "Shard", "EpochRow", "StepProgress", "TrainingOutcome", "train_on_device",
           "build_classifier", "checkpoint_path", "LOADERS"]

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
        device: where to train (a ``DeviceSpec``; a string such as ``"cuda:0"`` is parsed).
    """

    data: str
    model: str = "tinycnn"
    device: DeviceSpec = field(default_factory=lambda: DeviceSpec("cpu"))
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

    def __post_init__(self) -> None:
        if isinstance(self.device, str):
            object.__setattr__(self, "device", DeviceSpec.parse(self.device))
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


def build_classifier(name: str, num_classes: int, seed: int) -> tuple[nn.Module, int]:
    """A registered model with its last linear layer sized for ``num_classes``.

    Built on the CPU right after seeding, so every device starts from the same weights.

    Returns:
        The module and its parameter count.
    """
    import torch
    from torch import nn

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
class _OrderSampler:
    """Yields batches of indices in an order set before each epoch (from the CPU generator),
    so that every device and the stream and memory loaders see the same batches. (A plain
    iterable of index lists, as ``DataLoader(batch_sampler=...)`` takes.)"""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.order: list[int] = []

    def __iter__(self):  # type: ignore[no-untyped-def]
        for i in range(0, len(self.order), self.batch_size):
            yield self.order[i:i + self.batch_size]

    def __len__(self) -> int:
        return math.ceil(len(self.order) / self.batch_size)


def _on_device_transform(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
                         gen: torch.Generator | None) -> torch.Tensor:
    """uint8 -> normalised float, on the device; with ``gen``, a random horizontal flip per
    image and a random shift of up to 4 pixels per batch (draws come from the CPU ``gen``,
    so they are the same on every device)."""
    import torch

    x = x.float().div_(255)
    if gen is not None and len(x):
        flip = (torch.rand(len(x), generator=gen) < 0.5).to(x.device)
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
        dx, dy = (int(v) for v in torch.randint(-4, 5, (2,), generator=gen))
        x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    return (x - mean) / std


def dropout_seed(seed: int, epoch: int, step: int, rank: int = 0) -> int:
    """The seed of one training step's dropout masks (a function of these alone)."""
    return ((((seed * 100_003 + epoch) * 1_000_003 + step) * 1_009) + rank) % (2**63)


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
    import torch

    if device.type == "cuda":
        try:  # native bf16 only: an emulated one (before Ampere) is slower than fp16
            native = torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:  # torch before 2.3 has no such argument (and counts native only)
            native = torch.cuda.is_bf16_supported()
        return torch.bfloat16 if native else torch.float16
    return torch.bfloat16  # CPU (and MPS/XPU) autocast: bf16


@dataclass
class EpochRow:
    """One epoch of training on one device (the loss and accuracy curves are built from these).

    Times are seconds; ``wall_s`` is the cumulative wall-clock time since training started,
    so that curves can be drawn against time as well as against epochs. ``epoch_s`` is the
    training pass (``data_wait_s + compute_s`` plus loop overhead); ``val_s`` the validation
    pass after it; ``skipped_images`` the unreadable files left out of this epoch.
    """

    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float | None
    val_top1: float | None
    val_top5: float | None
    epoch_s: float
    samples_per_s: float
    data_wait_s: float
    compute_s: float
    wall_s: float
    val_s: float = 0.0
    steps: int = 0
    lr: float | None = None
    skipped_images: int = 0


@dataclass
class TrainingOutcome:
    """What training on one device measured, so far or in the end (the run stage turns it
    into a stored :class:`~devicebench.results.records.TrainingRecord`)."""

    model: str
    device: DeviceRef
    batch_size: int
    precision: str
    status: str = "running"
    message: str = ""
    dataset: dict[str, Any] = field(default_factory=dict)
    epochs: list[EpochRow] = field(default_factory=list)
    step_losses: list[float] = field(default_factory=list)
    total_s: float | None = None
    target_acc: float | None = None
    time_to_target_s: float | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StepProgress:
    """Where training is, for a progress display (sent every ~5% of an epoch's steps)."""

    device: str
    epoch: int
    epochs: int
    step: int
    steps: int
    loss: float | None = None


# -- the run ----------------------------------------------------------------------------
def train_on_device(config: TrainConfig, shard: Shard | None = None, *,
                    on_epoch: Callable[[TrainingOutcome], None] | None = None,
                    on_step: Callable[[StepProgress], None] | None = None) -> TrainingOutcome:
    """Train ``config.model`` on ``config.device`` and return what it measured.

    Meant to run in its own worker process (:func:`~devicebench.launchers.worker.run_in_worker`).
    A Ctrl-C (or SIGTERM) during training ends it with status ``interrupted`` and every
    finished epoch kept.

    With a ``shard`` of a data-parallel run (the process group already initialised), this
    process trains on its part of each epoch and DDP all-reduces the gradients; the epoch's
    training loss, accuracy and samples are summed over the ranks; rank 0 alone evaluates,
    checkpoints and calls ``on_epoch``, and only its outcome is complete (the others have
    no validation numbers).

    Nothing here writes to a store or a terminal: ``on_epoch`` receives the outcome after
    every finished epoch (to persist it, so that a kill keeps the epochs done) and
    ``on_step`` the progress within an epoch (to draw it).

    Raises:
        DatasetError: the dataset cannot be read.
        ConfigError: a setting cannot work (no classifier layer, bad value).
    """
    import signal

    import torch
    from torch import nn

    from devicebench.devices.sysinfo import collect_environment
    from devicebench.workloads.nets import seed_dropout
    from devicebench.measure.checkpoint import checkpoint_path, restore_checkpoint, save_checkpoint
    from devicebench.measure.shard import Shard
    from devicebench.workloads.datasets import MEAN, STD, ImageDataset, collate_skip_broken, load_in_memory, open_dataset

    # SIGTERM (the parent stopping us after its own Ctrl-C) ends training like a Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    shard = shard or Shard()
    spec = config.device
    device = torch.device(spec.torch_device)
    if config.threads:
        torch.set_num_threads(config.threads)
    # cuda:N current before anything touches it; fp32 is IEEE fp32 (cuDNN's TF32 default
    # off), so that the fp32 curves of two devices differ by rounding only.
    use_device(spec)
    set_fp32_math(tf32=False)

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
    record = TrainingOutcome(
        model=config.model, device=DeviceRef(spec.type, spec.index, _device_name(spec)),
        batch_size=config.batch_size, precision=precision, status="running",
        dataset=index.describe() | {"image_size": size},
        target_acc=config.target_acc, settings=settings,
        environment=collect_environment().to_dict(),
    )

    # ---- resume: weights, optimiser, curve so far and the time it took ---------------
    start_epoch, wall_before = 0, 0.0
    ckpt = checkpoint_path(config, shard.world_size)
    if config.resume and ckpt is not None and ckpt.is_file():
        start_epoch, wall_before = restore_checkpoint(ckpt, device, model, optimizer, scaler, record, shard.rank)
    elif config.resume:
        record.settings["resumed_from_epoch"] = 0
        record.message = "no checkpoint to resume from: trained from the start"

    loss_fn = nn.CrossEntropyLoss()
    last_epoch = config.epochs if config.stop_after is None else min(config.epochs, start_epoch + config.stop_after)
    report_every = max(1, steps_per_epoch // 20)
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
            if on_step is not None:
                on_step(StepProgress(spec.torch_device, epoch + 1, config.epochs, 0, steps_per_epoch))
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
                # The copy is issued asynchronously: wait for it, so that the data wait
                # includes the host-to-device copy rather than pushing it into compute.
                synchronize(spec)
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
                # Dropout masks from a CPU generator keyed by (seed, epoch, step, rank): the
                # same on every device, and on a resumed run.
                seed_dropout(model, dropout_seed(config.seed, epoch, step, shard.rank))
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
                if on_step is not None and (step % report_every == 0 or step == steps_per_epoch - 1):
                    on_step(StepProgress(spec.torch_device, epoch + 1, config.epochs, step + 1, steps_per_epoch,
                                         loss_value))
            synchronize(spec)
            epoch_s = time.perf_counter() - t_epoch
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
            rng_ranks = shard.gather_rng_states(torch.get_rng_state(), torch.cuda.get_rng_state(spec.index or 0)
                                                if spec.type == "cuda" else None, device) if ckpt is not None else []
            if shard.is_main:
                save_checkpoint(ckpt, model, optimizer, scaler, record, epoch + 1, wall,
                                 rng_ranks if shard.world_size > 1 else None)
            if on_epoch is not None and shard.is_main:
                on_epoch(record)
            shard.barrier()
        record.status = "ok"
    except KeyboardInterrupt:
        record.status = "interrupted"
        record.message = (record.message + "; " if record.message else "") + \
            f"interrupted after {len(record.epochs)} finished epoch(s)"
    if skipped_at_load:
        record.dataset["skipped_images"] = skipped_at_load
    record.dataset["skipped_images"] = max(record.dataset.get("skipped_images", 0),
                                           max((e.skipped_images for e in record.epochs), default=0))
    return record


def _evaluate(forward, config: TrainConfig, spec: DeviceSpec, amp_dtype, mean, std, data) -> tuple[float | None, float | None, float | None]:  # type: ignore[no-untyped-def]
    """Validation loss, top-1 and top-5 accuracy (no augmentation, no gradients)."""
    import torch
    from torch import nn

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


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _device_name(spec: DeviceSpec) -> str:
    if spec.type == "cuda":
        import torch

        return torch.cuda.get_device_name(spec.index or 0)
    if spec.type == "cpu":
        from devicebench.devices.sysinfo import cpu_info

        return cpu_info().model or "cpu"
    return spec.torch_device


def __getattr__(name: str) -> object:
    # Shard and checkpoint_path were importable from here; they still are, on first use.
    if name == "Shard":
        from devicebench.measure.shard import Shard

        return Shard
    if name == "checkpoint_path":
        from devicebench.measure.checkpoint import checkpoint_path

        return checkpoint_path
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def with_device(config: TrainConfig, device: DeviceSpec | str) -> TrainConfig:
    """The same run on another device."""
    return replace(config, device=DeviceSpec.parse(device) if isinstance(device, str) else device)
