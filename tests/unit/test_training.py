"""The training loop: same seed same curve, resume continues it, figures and tables."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console

from devicebench.errors import ConfigError
from devicebench.measure.training import TrainConfig, build_classifier, checkpoint_path, train_on_device
from devicebench.reports.training_figures import write_figures
from devicebench.reports.training import epoch_table, speedup_table, training_speedups
from devicebench.results.records import DeviceRef, EpochRow, TrainingRecord
from devicebench.results.store import Store
from devicebench.run.training import TrainJob, train_job
from devicebench.workloads.synthetic import make_synthetic


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic(tmp_path_factory.mktemp("train") / "set", classes=3, train_per_class=8,
                          val_per_class=2, test_images=0, size=16)


def _config(data: Path, tmp: Path, **changes) -> TrainConfig:  # type: ignore[no-untyped-def]
    base = TrainConfig(data=str(data), model="tinycnn-tiny", epochs=3, batch_size=8, lr=5e-3,
                       image_size=16, loader="memory", workers=0, checkpoint_dir=str(tmp / "ckpt"))
    return replace(base, **changes)


def test_same_seed_same_curve_and_resume_continues_it(data: Path, tmp_path: Path) -> None:
    full = train_on_device(_config(data, tmp_path / "a"))
    assert full.status == "ok" and len(full.epochs) == 3
    assert len(full.step_losses) == 9  # 23 readable images, batch 8: 3 steps per epoch
    assert full.dataset["skipped_images"] == 1  # the broken file, skipped, counted

    # Same seed, interrupted after 1 epoch, then resumed: the very same losses.
    cfg = _config(data, tmp_path / "b")
    first = train_on_device(replace(cfg, stop_after=1))
    assert [e.epoch for e in first.epochs] == [1]
    assert first.step_losses == full.step_losses[:3]  # two runs, same seed: identical
    assert checkpoint_path(cfg) is not None and checkpoint_path(cfg).is_file()
    resumed = train_on_device(replace(cfg, resume=True))
    assert resumed.settings["resumed_from_epoch"] == 1
    assert [e.epoch for e in resumed.epochs] == [1, 2, 3]
    assert resumed.step_losses == full.step_losses
    assert [e.val_loss for e in resumed.epochs] == [e.val_loss for e in full.epochs]
    assert resumed.epochs[2].wall_s > resumed.epochs[0].wall_s  # wall time carried over

    # Another seed gives another curve (so the equality above is not vacuous).
    other = train_on_device(_config(data, tmp_path / "c", seed=1, epochs=1))
    assert other.step_losses != full.step_losses[:3]


def test_stream_loader_and_store_per_epoch(data: Path, tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    with Store(db) as store:
        from devicebench.results.records import RunInfo

        store.begin_run(RunInfo(run_id="r1", command="test"))
    record = train_job(TrainJob(_config(data, tmp_path, loader="stream", epochs=1), run_id="r1", db=str(db)))
    assert record.status == "ok"
    row = record.epochs[0]
    assert row.data_wait_s > 0 and row.compute_s > 0 and row.epoch_s >= row.compute_s
    assert row.skipped_images == 1
    with Store(db) as store:
        stored = store.raw_records("r1", "training")
    assert len(stored) == 1 and stored[0]["status"] == "ok" and len(stored[0]["epochs"]) == 1
    assert TrainingRecord.from_dict(stored[0]).epochs[0].val_top1 == row.val_top1


def test_amp_on_cpu_is_recorded(data: Path, tmp_path: Path) -> None:
    record = train_on_device(_config(data, tmp_path, epochs=1, amp=True, checkpoint_dir=None))
    assert record.precision == "amp-bfloat16" and record.settings["amp"] is True
    assert "amp_note" in record.settings and record.settings["compile"] is False


def test_config_validation() -> None:
    with pytest.raises(ConfigError):
        TrainConfig(data="x", loader="disk")
    with pytest.raises(ConfigError):
        TrainConfig(data="x", target_acc=1.5)
    model, params = build_classifier("tinycnn", 7, seed=0)
    assert model.classifier.out_features == 7 and params > 0


def _fake(device: str, times: list[float], ttt: float | None) -> TrainingRecord:
    kind, _, idx = device.partition(":")
    rows = [EpochRow(i + 1, 2.0 / (i + 1), 0.2 * (i + 1), 2.1 / (i + 1), 0.2 * (i + 1), 0.5, t, 100 / t,
                     0.1 * t, 0.9 * t, sum(times[:i + 1])) for i, t in enumerate(times)]
    return TrainingRecord(run_id="r", model="tinycnn", device=DeviceRef(kind, int(idx) if idx else None, device),
                          batch_size=64, precision="fp32", status="ok", epochs=rows, target_acc=0.4,
                          time_to_target_s=ttt, dataset={"layout": "tiny-imagenet", "classes": 10})


def test_speedup_rows_and_tables() -> None:
    cpu, gpu = _fake("cpu", [10.0, 8.0], 18.0), _fake("cuda:0", [2.0, 1.0], 3.0)
    rows = training_speedups([cpu, gpu])
    assert [(r.epoch, round(r.ratio, 2)) for r in rows] == [(1, 5.0), (2, 8.0), (0, 6.0)]
    assert training_speedups([cpu]) == [] and speedup_table([cpu]) is None
    console = Console(width=200, record=True)
    console.print(speedup_table([cpu, gpu]))
    console.print(epoch_table(cpu))
    text = console.export_text()
    assert "8.0x" in text and "to target" in text and "time to 40.0% val top-1: 18.0 s" in text


def test_figures_written(tmp_path: Path) -> None:
    written = write_figures([_fake("cpu", [10.0, 8.0], None), _fake("cuda:0", [2.0, 1.0], None)], tmp_path / "figs")
    names = sorted(p.name for p in written)
    assert names == ["figure1-loss.png", "figure1-loss.svg", "figure2-accuracy.png", "figure2-accuracy.svg"]
    for path in written:
        assert path.stat().st_size > 5000
    svg = (tmp_path / "figs" / "figure1-loss.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert (tmp_path / "figs" / "figure2-accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
