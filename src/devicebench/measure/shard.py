"""This process's part of a data-parallel run: the same training loop serves one process
and N DistributedDataParallel ranks (launched by :mod:`devicebench.launchers.ranks`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from devicebench.devices.discovery import DeviceSpec

__all__ = ["Shard"]


@dataclass(frozen=True)
class Shard:
    """This process's part of a data-parallel run (DistributedDataParallel, see
    :mod:`devicebench.launchers.ranks`). The default, rank 0 of 1, is a plain run: every
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

    def gather_rng_states(self, cpu_state: torch.Tensor, cuda_state: torch.Tensor | None,
                          device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """Every rank's random-number-generator states (byte tensors of the same size on every
        rank), in rank order, on every rank.

        Gathered as tensors, not with ``all_gather_object``: nothing that arrives over the
        ranks' connections is ever unpickled (docs/own-models.md, threat model).
        """
        if self.world_size == 1:
            return [(cpu_state, cuda_state)]
        import torch.distributed as dist

        def gathered(state: torch.Tensor) -> list[torch.Tensor]:
            local = state.to(device)  # nccl gathers CUDA tensors, gloo CPU ones
            out = [torch.empty_like(local) for _ in range(self.world_size)]
            dist.all_gather(out, local)
            return [t.cpu() for t in out]

        cpus = gathered(cpu_state)
        cudas: list[torch.Tensor | None] = list(gathered(cuda_state)) if cuda_state is not None else [None] * self.world_size
        return list(zip(cpus, cudas))

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
