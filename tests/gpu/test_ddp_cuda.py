"""`--nproc` on CUDA: the nccl path, one GPU per rank (as many ranks as GPUs, at most 2)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from devicebench.run.training import plan_distributed, train_distributed
from devicebench.measure.training import TrainConfig
from devicebench.workloads.synthetic import make_synthetic


@pytest.mark.gpu
def test_ddp_on_cuda_with_nccl(tmp_path: Path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    nproc = min(2, torch.cuda.device_count())
    data = make_synthetic(tmp_path / "set", classes=4, train_per_class=16, val_per_class=6, size=32)
    config = TrainConfig(data=str(data), model="tinycnn-tiny", device="cuda", epochs=2, batch_size=8, lr=1e-2,
                         image_size=32, loader="memory", workers=0, warmup_steps=2)
    result = train_distributed(config, plan_distributed("cuda", nproc))
    assert result.ok, f"{result.error}\n{result.detail}"
    record = result.value
    assert record.status == "ok" and record.device.type == "cuda"
    assert (record.settings["nproc"], record.settings["backend"]) == (nproc, "nccl")
    assert record.settings["global_batch_size"] == 8 * nproc
    assert all(math.isfinite(v) for v in record.step_losses) and len(record.epochs) == 2
