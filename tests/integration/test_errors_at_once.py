"""Errors at once and with their cause (issue 14, point 5): what can be checked before
measuring is checked before the first worker starts (one line, exit 2, no run stored), and
an error inside a model shows the model's own line, not its interpreter's wrapper."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from devicebench.cli import main
from devicebench.measure.inference import error_line
from devicebench.workloads.registry import create_model
from devicebench.workloads.weights import check_weights_fit, mismatch


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("at-once")
    state = create_model("resnet18-tiny").module.state_dict()
    torch.save(state, folder / "r18.pth")
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "r18.safetensors"))
    torch.save({f"module.{k}": v for k, v in state.items()}, folder / "r18_ddp.pth")
    conv = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(conv, torch.randn(1, 3, 16, 16)), str(folder / "conv.ts"))
    return {"pth": folder / "r18.pth", "safetensors": folder / "r18.safetensors", "ddp": folder / "r18_ddp.pth",
            "ts": folder / "conv.ts"}


def _one_line(capsys: pytest.CaptureFixture[str], rc: int) -> str:
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert err.startswith("devicebench: error: ") and "\n" not in err and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("kind", ["pth", "safetensors"])
def test_weights_that_do_not_match_arch_stop_before_any_worker(kind: str, files: dict[str, Path], tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "results.db"
    rc = main(["infer", str(files[kind]), "--arch", "tinycnn-tiny", "--device", "cpu", "--db", str(db)])
    err = _one_line(capsys, rc)
    name = files[kind].name
    assert f"weights {name} do not match --arch tinycnn-tiny: 26 missing keys (e.g. features.0.weight, " in err
    assert "74 unexpected (e.g. " in err
    assert not db.exists(), "a run was stored for a command that could not measure anything"


def test_registered_model_weights_are_checked_too(files: dict[str, Path], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "results.db"
    rc = main(["infer", "resnet50-tiny", "--weights", str(files["pth"]), "--device", "cpu", "--db", str(db)])
    err = _one_line(capsys, rc)
    assert "do not match resnet50-tiny: 102 missing keys" in err
    assert "1 of another shape (e.g. fc.weight: [10, 64] in the file, [10, 2048] in the model)" in err
    assert not db.exists()


def test_matching_weights_pass_the_check(files: dict[str, Path]) -> None:
    for kind in ("pth", "safetensors", "ddp"):  # a DataParallel "module." prefix is fine
        check_weights_fit(files[kind], "resnet18-tiny")
    assert mismatch({"a": (1,)}, {"a": (1,)}) is None
    assert mismatch({"a": (2,)}, {"a": (1,), "b": (3,)}) == \
        "1 missing key (e.g. b), 1 of another shape (e.g. a: [2] in the file, [1] in the model)"


def test_an_input_shape_of_the_wrong_rank_for_arch_stops_at_once(files: dict[str, Path], tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["infer", str(files["pth"]), "--arch", "resnet18-tiny", "--input-shape", "1,3,64", "--device", "cpu",
               "--db", str(tmp_path / "r.db")])
    err = _one_line(capsys, rc)
    assert "--arch resnet18-tiny takes 1 input(s) shaped [N, 3, 64, 64]; --input-shape gave [1, 3, 64]" in err
    assert not (tmp_path / "r.db").exists()


def test_a_torchscript_error_shows_the_models_own_line(files: dict[str, Path], run_cli, tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    proc = run_cli("infer", str(files["ts"]), "--input-shape", "1,3,64", "--device", "cpu", "--quick",
                   "--max-time", "0.3", "--json", str(out))
    assert proc.returncode == 1, proc.stderr
    assert "Expected 4-dimensional input for 4-dimensional weight [8, 3, 3, 3]" in proc.stderr
    assert "conv.ts cpu b1: ERROR: RuntimeError: Expected 4-dimensional input" in proc.stderr  # at once
    assert "following operation failed in the TorchScript interpreter" not in proc.stderr
    (record,) = json.loads(out.read_text())["records"]
    assert record["message"].startswith("RuntimeError: Expected 4-dimensional input"), record["message"][:300]


def test_error_line_unwraps_interpreter_wrappers() -> None:
    wrapped = RuntimeError(
        "The following operation failed in the TorchScript interpreter.\n"
        "Traceback of TorchScript (most recent call last):\n"
        "  File \"code/__torch__/torch/nn/modules/conv.py\", line 12, in forward\n"
        "    return torch._convolution(input, weight)\n"
        "RuntimeError: Expected 4-dimensional input for 4-dimensional weight [8, 3, 3, 3], but got "
        "3-dimensional input of size [1, 3, 64] instead\n")
    assert error_line(wrapped) == ("RuntimeError: Expected 4-dimensional input for 4-dimensional weight "
                                   "[8, 3, 3, 3], but got 3-dimensional input of size [1, 3, 64] instead")
    assert error_line(ValueError("plain\nsecond line")) == "ValueError: plain"
    assert error_line(KeyError()) == "KeyError"
    # A wrapper with no recognisable cause keeps its own first line.
    assert error_line(RuntimeError("The following operation failed in the TorchScript interpreter.\n...")) \
        .startswith("RuntimeError: The following operation failed")
