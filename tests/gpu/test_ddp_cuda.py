"""`--nproc` on CUDA: the nccl path, one GPU per rank.

One rank runs on every GPU machine (devicebench's own rank launcher, nccl, a single process:
its record is a plain one, without the data-parallel settings); two ranks need two GPUs and
are skipped, with the reason, on a one-GPU machine. Meanwhile nothing of the run may listen
beyond loopback (NCCL's bootstrap is pinned to the loopback interface, issue 12 case 4).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from conftest import sockets_listening_meanwhile

from devicebench.measure.training import TrainConfig
from devicebench.run.training import plan_distributed, train_distributed
from devicebench.workloads.synthetic import make_synthetic


@pytest.mark.gpu
@pytest.mark.parametrize("nproc", [1, 2])
def test_ddp_on_cuda_with_nccl(nproc: int, tmp_path: Path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    if torch.cuda.device_count() < nproc:
        pytest.skip(f"{nproc} ranks need {nproc} GPUs, {torch.cuda.device_count()} found")
    data = make_synthetic(tmp_path / "set", classes=4, train_per_class=16, val_per_class=6, size=32)
    config = TrainConfig(data=str(data), model="tinycnn-tiny", device="cuda", epochs=2, batch_size=8, lr=1e-2,
                         image_size=32, loader="memory", workers=0, warmup_steps=2)
    with sockets_listening_meanwhile() as seen:
        result = train_distributed(config, plan_distributed("cuda", nproc))
    assert result.ok, f"{result.error}\n{result.detail}"
    assert all(ip in {"127.0.0.1", "::1"} for _, _, ip, _ in seen), f"listening beyond loopback: {seen}"
    record = result.value
    assert record.status == "ok" and record.device.type == "cuda"
    assert all(math.isfinite(v) for v in record.step_losses) and len(record.epochs) == 2
    if nproc == 1:
        # One rank is one process: no data-parallel settings to record (Shard.settings).
        assert "nproc" not in record.settings
    else:
        assert (record.settings["nproc"], record.settings["backend"]) == (nproc, "nccl")
        assert record.settings["global_batch_size"] == 8 * nproc
