"""Data-parallel pieces that need no process group: the shard of the data, the plan, the
scaling arithmetic and its table, the baseline lookup."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from rich.console import Console

from devicebench.errors import ConfigError, UserError
from devicebench.measure.training import Shard, TrainConfig
from devicebench.results.scaling import Scaling, scaling_of
from devicebench.run import training as distributed
from devicebench.run.training import plan_distributed
from devicebench.reports.scaling import scaling_note, scaling_table
from devicebench.results.records import DeviceRef, EpochRow, TrainingRecord
from devicebench.run.training import load_baseline


@pytest.mark.parametrize("n, world", [(10, 2), (11, 2), (7, 3), (2, 4), (64, 4)])
def test_shard_cuts_the_order_like_distributed_sampler(n: int, world: int) -> None:
    order = torch.randperm(n, generator=torch.Generator().manual_seed(n))
    parts = []
    for rank in range(world):
        sampler = torch.utils.data.DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=False)
        expected = order[list(sampler)]
        got = Shard(rank, world, "gloo").take(order)
        assert got.tolist() == expected.tolist()
        parts.append(got)
    assert len({len(p) for p in parts}) == 1  # every rank takes the same number of steps
    assert set(torch.cat(parts).tolist()) == set(order.tolist())  # together: the whole epoch
    assert Shard().take(order) is order  # one process: untouched


def test_single_shard_is_a_no_op() -> None:
    shard = Shard()
    model = torch.nn.Linear(2, 2)
    assert shard.is_main and shard.wrap(model, None) is model  # type: ignore[arg-type]
    assert shard.sum([1.0, 2.0], torch.device("cpu")) == [1.0, 2.0] and shard.settings(8) == {}
    assert Shard(1, 2, "gloo").settings(8)["global_batch_size"] == 16


def test_plan_checks_nproc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(distributed, "usable_cores", lambda: 4)
    plan = plan_distributed("cpu", 2)
    assert (plan.backend, plan.threads_per_rank) == ("gloo", 2)
    assert plan_distributed("cpu", 3).threads_per_rank == 1
    assert plan_distributed("cpu", 2, threads=1).threads_per_rank == 1
    with pytest.raises(ConfigError, match=">= 1"):
        plan_distributed("cpu", 0)
    with pytest.raises(ConfigError, match="needs 5 cores"):
        plan_distributed("cpu", 5)
    with pytest.raises(ConfigError, match="cpu .gloo. and cuda"):
        plan_distributed("mps", 2)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="one GPU per process, 0 found"):
            plan_distributed("cuda", 2)


def _record(rates: list[float], nproc: int = 1, device: str = "cpu", **settings) -> TrainingRecord:  # type: ignore[no-untyped-def]
    rows = [EpochRow(epoch=i + 1, train_loss=1.0, train_acc=0.5, val_loss=1.0, val_top1=0.5, val_top5=1.0,
                     epoch_s=100 / r, samples_per_s=r, data_wait_s=0.0, compute_s=100 / r, wall_s=float(i + 1))
             for i, r in enumerate(rates)]
    extra = {"nproc": nproc, "backend": "gloo", "per_rank_batch_size": 8, "global_batch_size": 8 * nproc,
             "threads_per_rank": 1} if nproc > 1 else {"threads_used": 2}
    return TrainingRecord(run_id="r", model="tinycnn-tiny", device=DeviceRef(device, None, device), batch_size=8,
                          precision="fp32", status="ok", epochs=rows,
                          settings={"image_size": 32, "loader": "memory", "amp": False, "compile": False}
                          | extra | settings)


def test_scaling_is_median_throughput_over_n_times_one() -> None:
    base, ddp = _record([50, 100, 110]), _record([150, 180, 400], nproc=2)
    scaling = scaling_of(base, ddp)
    assert scaling is not None
    assert scaling.baseline_samples_per_s == 100 and scaling.samples_per_s == 180
    assert scaling.speedup == pytest.approx(1.8) and scaling.efficiency == pytest.approx(0.9)
    assert (scaling.baseline_threads, scaling.threads_per_rank) == (2, 1)
    assert scaling_of(_record([]), ddp) is None
    assert Scaling(4, 100.0, 100.0).efficiency == pytest.approx(0.25)


def test_scaling_table_and_cpu_note() -> None:
    ddp = _record([150, 180, 200], nproc=2)
    assert scaling_table([ddp]) is None  # no scaling measured
    ddp.settings["scaling"] = scaling_of(_record([100]), ddp).to_dict()  # type: ignore[union-attr]
    console = Console(width=160, record=True, color_system=None)
    console.print(scaling_table([_record([1]), ddp]))
    text = console.export_text()
    assert "16 (2 x 8)" in text and "1.80x" in text and "90%" in text and "gloo" in text
    note = scaling_note(ddp, cores=2)
    assert note is not None and "cannot beat one process by much" in note and "1.8x faster" in note
    assert scaling_note(_record([1]), cores=2) is None
    assert scaling_note(_record([1], nproc=2, device="cuda"), cores=2) is None


def test_load_baseline_picks_the_matching_single_process_record(tmp_path: Path) -> None:
    config = TrainConfig(data="x", model="tinycnn-tiny", batch_size=8, image_size=32, loader="memory")
    wrong_batch = _record([10])
    wrong_batch.batch_size = 16
    good = _record([20])
    doc = {"run": {}, "records": [wrong_batch.to_dict(), _record([30], nproc=2).to_dict(), good.to_dict()]}
    path = tmp_path / "base.json"
    path.write_text(json.dumps(doc))
    assert load_baseline(path, config, "cpu").record_id == good.record_id
    with pytest.raises(UserError, match="no finished single-process"):
        load_baseline(path, config, "cuda")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(UserError, match="cannot read"):
        load_baseline(tmp_path / "bad.json", config, "cpu")
