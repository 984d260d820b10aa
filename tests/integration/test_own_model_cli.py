"""The CLI with user model files and user errors: one line on stderr, exit 2, no traceback."""

from __future__ import annotations

import json
import sqlite3
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from devicebench.cli import main
from devicebench.results.store import LATEST_VERSION, Store
from devicebench.workloads.registry import create_model


@pytest.fixture(scope="module")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cli-models")
    cnn = create_model("tinycnn-tiny").module.eval()
    x = torch.randn(1, 3, 64, 64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(cnn, (x,), str(folder / "cnn.onnx"), input_names=["x"], dynamo=False)
        torch.jit.save(torch.jit.trace(cnn, x), str(folder / "cnn.ts"))
    torch.save(cnn.state_dict(), folder / "cnn_state.pth")
    return {"onnx": folder / "cnn.onnx", "torchscript": folder / "cnn.ts", "state": folder / "cnn_state.pth",
            "folder": folder}


def test_infer_onnx_file_on_cpu_writes_its_record(run_cli, model_files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    proc = run_cli("infer", str(model_files["onnx"]), "--device", "cpu", "--quick", "--max-time", "0.3",
                   "--json", str(out), "--db", str(tmp_path / "r.db"))
    assert proc.returncode == 0, proc.stderr
    assert "cnn.onnx: onnx model; inputs x [1, 3, 64, 64] float32" in proc.stderr
    record = json.loads(out.read_text())["records"][0]
    assert record["status"] == "ok" and record["model"] == "cnn.onnx"
    assert record["model_file"]["format"] == "onnx" and len(record["model_file"]["sha256"]) == 64
    assert record["latency_ms"]["n"] >= 3 and record["input_shape"] == [[1, 3, 64, 64]]
    assert record["weights"].startswith("file:cnn.onnx sha256:")
    with Store(tmp_path / "r.db") as store:
        assert store.records(store.runs()[0].run_id)[0].model_file["format"] == "onnx"


def _one_line_error(capsys: pytest.CaptureFixture[str], rc: int, expect: str = "") -> str:
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert err.startswith("devicebench: error: ") and "\n" not in err and "Traceback" not in err, err
    assert expect in err, err
    return err


def test_user_errors_are_one_line_and_exit_2(model_files: dict[str, Path], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "random.pt").write_bytes(np.random.default_rng(1).bytes(3000))
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(model_files["onnx"].read_bytes()[:500])
    cases = {
        "empty": ([str(tmp_path / "empty.pt"), "--input-shape", "1,3,64,64"], "is empty"),
        "random": ([str(tmp_path / "random.pt"), "--input-shape", "1,3,64,64"], "not a model file"),
        "truncated": ([str(truncated)], "not a readable ONNX model"),
        "folder": ([str(tmp_path)], "is a folder"),
        "missing": ([str(tmp_path / "nope.onnx")], "not found"),
        "unknown-name": (["resnet9000"], "unknown model"),
        "bad-shape": ([str(model_files["onnx"]), "--input-shape", "1,3,32,32"], "expects input 'x' of shape [1, 3, 64, 64]"),
        "bad-batch": ([str(model_files["onnx"]), "--batch-size", "4"], "fixes the batch size"),
        "no-shape": ([str(model_files["torchscript"])], "--input-shape"),
        "no-arch": ([str(model_files["state"])], "--arch"),
        "input-folder": ([str(model_files["torchscript"]), "--input", str(tmp_path)], "is a folder"),
        "bad-dtype": ([str(model_files["torchscript"]), "--input-shape", "1,3,64,64", "--input-dtype", "complex7"], "unknown input dtype"),
        "arch-on-name": (["tinycnn-tiny", "--arch", "resnet50"], "apply to model files"),
    }
    for name, (args, expect) in cases.items():
        rc = main(["infer", *args, "--device", "cpu", "--no-db"])
        _one_line_error(capsys, rc, expect)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_unavailable_device_is_a_user_error(model_files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["infer", str(model_files["onnx"]), "--device", "cuda", "--no-db"])
    _one_line_error(capsys, rc, "not available on this machine")


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    from devicebench.errors import ModelFileError

    with pytest.raises(ModelFileError):
        main(["--debug", "infer", str(tmp_path / "missing.pt"), "--no-db"])


def test_newer_or_corrupt_database_is_reported_and_left_untouched(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    newer = tmp_path / "newer.db"
    with Store(newer) as store:
        pass
    conn = sqlite3.connect(newer)
    conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 5}")
    conn.close()
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"SQLite format 3\x00" + np.random.default_rng(2).bytes(5000))
    for db, expect in ((newer, "newer devicebench"), (corrupt, "left untouched")):
        before = db.read_bytes()
        for argv in (["infer", "tinycnn-tiny", "--device", "cpu", "--db", str(db)], ["history", "--db", str(db)]):
            _one_line_error(capsys, main(argv), expect)
        assert db.read_bytes() == before, f"{db.name} was modified"


def test_a_real_process_prints_no_traceback_for_a_bad_file(run_cli, tmp_path: Path) -> None:
    bad = tmp_path / "random.onnx"
    bad.write_bytes(b"\x08" + np.random.default_rng(3).bytes(4000))
    proc = run_cli("infer", str(bad), "--device", "cpu")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("devicebench: error:") and "Traceback" not in proc.stderr


def test_infer_name_makes_two_formats_of_one_model_comparable(run_cli, model_files: dict[str, Path],
                                                             tmp_path: Path) -> None:
    """`infer PATH --name NAME`: the name is stored and shown, so two formats of one model
    match in `compare` (same model, device, batch and precision)."""
    db = str(tmp_path / "r.db")
    for kind in ("onnx", "torchscript"):
        extra = ["--input-shape", "1,3,64,64"] if kind == "torchscript" else []
        proc = run_cli("infer", str(model_files[kind]), "--name", "tinycnn-export", "--device", "cpu", "--quick",
                       "--max-time", "0.3", "--db", db, *extra)
        assert proc.returncode == 0, proc.stderr
        assert "tinycnn-export" in proc.stdout
    with Store(db) as store:
        runs = store.runs()
        assert [store.records(r.run_id)[0].model for r in runs] == ["tinycnn-export", "tinycnn-export"]
        assert store.records(runs[0].run_id)[0].model_file["format"] in ("onnx", "torchscript")
    proc = run_cli("compare", runs[1].run_id, runs[0].run_id, "--db", db)
    assert proc.returncode == 0, proc.stderr
    assert "tinycnn-export" in proc.stdout and "nothing to compare" not in proc.stdout


def test_infer_name_is_for_model_files(capsys: pytest.CaptureFixture[str]) -> None:
    _one_line_error(capsys, main(["infer", "tinycnn-tiny", "--name", "x", "--device", "cpu"]), "--name")
    with pytest.raises(SystemExit):
        main(["infer", "model.onnx", "--name", "two\nlines"])
