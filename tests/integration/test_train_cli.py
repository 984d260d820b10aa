"""`devicebench train` and `devicebench data` end to end, in a subprocess."""

from __future__ import annotations

import json
from pathlib import Path


def test_train_cli_learns_writes_json_figures_and_store(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "set"
    made = run_cli("data", "make-synthetic", str(data), "--classes", "4", "--train-per-class", "12",
                   "--val-per-class", "6", "--size", "24")
    assert made.returncode == 0, made.stderr
    inspected = run_cli("data", "inspect", str(data), "--json", "inspect.json")
    assert inspected.returncode == 0, inspected.stderr
    report = json.loads((tmp_path / "inspect.json").read_text())
    assert report["grayscale"] == 3 and report["broken"] == 1 and report["train_images"] == 48

    db = tmp_path / "train.db"
    result = run_cli("train", "--data", str(data), "--model", "tinycnn-tiny", "--epochs", "4", "--device", "cpu",
                     "--batch-size", "8", "--lr", "0.01", "--image-size", "24", "--workers", "0",
                     "--json", "out.json", "--plot", "figs", "--db", str(db), "--target-acc", "0.4")
    assert result.returncode == 0, result.stderr
    assert "top-1" in result.stdout and "1 unreadable image(s) skipped" in result.stderr
    doc = json.loads((tmp_path / "out.json").read_text())
    (record,) = doc["records"]
    assert record["kind"] == "training" and record["status"] == "ok"
    assert [e["epoch"] for e in record["epochs"]] == [1, 2, 3, 4]
    assert len(record["step_losses"]) == 24  # 47 readable images, batch 8
    best = max(e["val_top1"] for e in record["epochs"])
    assert best >= 0.6, f"4 classes (chance 0.25): best val top-1 {best}"
    assert record["epochs"][-1]["train_loss"] < record["epochs"][0]["train_loss"]
    for name in ("figure1-loss.png", "figure1-loss.svg", "figure2-accuracy.png", "figure2-accuracy.svg"):
        assert (tmp_path / "figs" / name).stat().st_size > 5000
    shown = run_cli("history", "--db", str(db))
    assert shown.returncode == 0 and "train" in shown.stdout
    # piped: no bar redraws (the per-epoch bar is for terminals only)
    assert "\r" not in result.stderr + result.stdout and "\x1b" not in result.stderr + result.stdout
    # `show --json` holds the training record as `train --json` wrote it: epochs, curves, timing
    as_json = run_cli("show", "last", "--db", str(db), "--json", "-")
    assert as_json.returncode == 0, as_json.stderr
    (stored,) = json.loads(as_json.stdout)["records"]
    assert stored == record


def test_train_cli_bad_input_is_one_line(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    missing = run_cli("train", "--data", str(tmp_path / "nope"), "--device", "cpu")
    assert missing.returncode == 2 and "dataset not found" in missing.stderr and "Traceback" not in missing.stderr
    wrong = run_cli("train", "--model", "bert-base-tiny", "--device", "cpu", "--no-db")
    assert wrong.returncode == 2 and "needs an image classifier" in wrong.stderr
    bad = run_cli("train", "--target-acc", "abc", "--device", "cpu")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "error: argument --target-acc" in bad.stderr and "'abc'" in bad.stderr, bad.stderr
    assert bad.stdout == ""  # refused before anything started
