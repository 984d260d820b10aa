"""Checkpoints of a training run: one file per setting, written atomically after each epoch,
holding everything needed to continue the same curve (weights, optimiser, scaler, random
states of every rank, the rows and losses so far, the wall time spent)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from devicebench.measure.training import TrainConfig, TrainingOutcome

__all__ = ["checkpoint_path", "save_checkpoint", "restore_checkpoint"]


def checkpoint_path(config: TrainConfig, nproc: int = 1) -> Path | None:
    """One checkpoint file per (data, model, device type, seed, batch, lr, amp...) setting,
    and per number of data-parallel processes (``nproc`` > 1 trains another curve)."""
    if config.checkpoint_dir is None:
        return None
    key = {k: v for k, v in asdict(config).items()
           if k not in ("stop_after", "resume", "checkpoint_dir", "target_acc", "workers")}
    key["data"] = str(Path(config.data).resolve())
    key["device"] = config.device.torch_device
    if nproc > 1:
        key["nproc"] = nproc
        key.pop("threads", None)  # set per rank by the launcher
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    device = config.device.torch_device.replace(":", "")
    return Path(config.checkpoint_dir) / f"{config.model}-{device}-{digest}.pt"


def save_checkpoint(path: Path | None, model: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, record: TrainingOutcome,
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


def restore_checkpoint(path: Path, device: torch.device, model: nn.Module, optimizer: torch.optim.Optimizer,
                       scaler: torch.amp.GradScaler, outcome: TrainingOutcome, rank: int = 0) -> tuple[int, float]:
    """Load ``path`` into the model, optimiser, scaler, random state and ``outcome``.

    Returns:
        The epoch to continue from and the wall time already spent.
    """
    from devicebench.measure.training import EpochRow

    spec = outcome.device
    state = torch.load(path, map_location=device, weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scaler.load_state_dict(state["scaler"])
    torch.set_rng_state(state["rng_cpu"])
    if spec.type == "cuda" and "rng_cuda" in state:
        torch.cuda.set_rng_state(state["rng_cuda"], spec.index or 0)
    if "rng_ranks" in state:  # several processes: each rank's own dropout draws
        cpu_rng, cuda_rng = state["rng_ranks"][rank]
        torch.set_rng_state(cpu_rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state(cuda_rng, spec.index or 0)
    start_epoch = int(state["epoch"])
    outcome.epochs = [EpochRow(**row) for row in state["rows"]]
    outcome.step_losses = list(state["step_losses"])
    outcome.time_to_target_s = state.get("time_to_target_s")
    outcome.settings["resumed_from_epoch"] = start_epoch
    return start_epoch, float(state["wall_s"])
