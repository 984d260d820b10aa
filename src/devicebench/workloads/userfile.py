"""Your own model, from a file or a folder: recognised by its content, loaded safely.

Formats (recognised from magic bytes, zip members and folder files, never from the name
alone):

========================  ===========================================================
``torchscript``           ``torch.jit.save`` archive (zip with ``code/`` and ``constants.pkl``)
``export``                ``torch.export.save`` program (``.pt2``: zip with ``models/*.json``)
``onnx``                  ONNX protobuf, run with onnxruntime (:class:`OrtModule`)
``huggingface``           folder with ``config.json`` and ``model.safetensors`` /
                          ``pytorch_model.bin`` (transformers, local files only)
``safetensors``           weights only: needs ``arch`` (a registered architecture)
``state-dict``            ``torch.save`` of a dict of tensors: needs ``arch``
``pickle``                ``torch.save`` of a whole module: only with ``trust_pickle``
========================  ===========================================================

Safety: a pickle can run any code when it is loaded. Nothing here unpickles a file with the
unrestricted unpickler unless the user said ``trust_pickle``: ``torch.save`` files are first
read with ``torch.load(weights_only=True)`` (a restricted unpickler that builds tensors and
containers only), and ``.pt2`` archives are checked for pickled members before
``torch.export.load`` (which would fall back to full unpickling for them).

The parent process resolves a file once (:func:`resolve_user_model`: format, inputs, hash),
so that bad input fails fast with one line; each worker then loads it
(:func:`load_user_model`).
"""

from __future__ import annotations

import io
import json
import struct
import types
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from devicebench.workloads.files import file_sha256
from devicebench.errors import DeviceUnavailableError, InputShapeError, ModelFileError
from devicebench.workloads.registry import Workload, get_model_entry

__all__ = [
    "FORMATS",
    "INPUT_DTYPES",
    "InputPlan",
    "UserModelSpec",
    "detect_format",
    "looks_like_path",
    "resolve_user_model",
    "load_user_model",
    "load_tensor_file",
    "parse_shape",
]

#: Formats this module recognises, in the order the docs list them.
FORMATS = ("torchscript", "export", "onnx", "huggingface", "safetensors", "state-dict", "pickle")

#: ``--input-dtype`` names and the torch dtypes they mean.
INPUT_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32, "float": torch.float32, "fp32": torch.float32,
    "float16": torch.float16, "half": torch.float16, "fp16": torch.float16,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float64": torch.float64, "double": torch.float64,
    "int64": torch.int64, "long": torch.int64, "int32": torch.int32, "int": torch.int32,
    "int8": torch.int8, "uint8": torch.uint8, "bool": torch.bool,
}
_DTYPE_NAMES = {v: k for k, v in reversed(list(INPUT_DTYPES.items()))}

_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json",
                 "pytorch_model.bin.index.json")
_MODEL_SUFFIXES = (".pt", ".pth", ".pt2", ".onnx", ".safetensors", ".bin", ".ckpt", ".jit", ".ts", ".torchscript")


@dataclass(frozen=True)
class InputPlan:
    """One model input: its name, shape (dimension 0 is the batch), dtype and how it is made.

    ``kind`` is ``random`` (normal floats), ``tokens`` (real sentences through a tokenizer),
    ``ones``, ``zeros`` or ``file`` (rows of a tensor file, repeated to fill the batch).
    """

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    kind: str = "random"
    source: str = ""

    def with_batch(self, batch_size: int) -> list[int]:
        return [batch_size, *self.shape[1:]]


@dataclass(frozen=True)
class UserModelSpec:
    """A model file or folder and how to feed it; travels to each worker inside the config.

    Attributes:
        path: the file or folder.
        arch: registered architecture for weights-only files (safetensors, state dicts).
        trust_pickle: allow unpickling a whole pickled module (runs code from the file).
        input_shapes: one shape per input, batch first (``None``: from the model or a file).
        input_dtypes: one dtype name per input (or one for all).
        input_files: ``.npy`` / ``.pt`` tensor files to use as inputs.
        seq_len: sequence length for text models (Hugging Face folders).
        format: filled by :func:`resolve_user_model`.
        inputs: filled by :func:`resolve_user_model`.
        sha256: of the file (of the weights file for a folder), filled when resolved.
        tokenizer: tokenizer file used for text inputs, when the folder has one.
        note: how the model reached this file (e.g. exported from an ``nn.Module``).
        display_path: what records show as the path (a temporary file's is meaningless).
        fixed_batch: ``(input name, batch, declared dims)`` when the file fixes the batch size.
    """

    path: str
    arch: str | None = None
    trust_pickle: bool = False
    input_shapes: tuple[tuple[int, ...], ...] | None = None
    input_dtypes: tuple[str, ...] | None = None
    input_files: tuple[str, ...] | None = None
    seq_len: int | None = None
    format: str = ""
    inputs: tuple[InputPlan, ...] = ()
    sha256: str = ""
    tokenizer: str | None = None
    note: str = ""
    display_path: str | None = None
    fixed_batch: tuple[str, int, tuple[int | None, ...]] | None = None

    @property
    def name(self) -> str:
        """Display name: the file name (with its parent for generic names like ``model``)."""
        path = Path(self.path)
        if path.stem.lower() in ("model", "models", "checkpoint", "weights") and path.parent.name:
            return f"{path.parent.name}/{path.name}"
        return path.name or str(path)

    def describe(self) -> dict[str, Any]:
        """The ``model_file`` field of a record (see docs/results-schema.md)."""
        return {
            "path": self.display_path or self.path,
            "format": self.format,
            "sha256": self.sha256,
            "arch": self.arch,
            "trusted_pickle": self.format == "pickle" and self.trust_pickle,
            "inputs": [
                {"name": i.name, "shape": list(i.shape), "dtype": i.dtype, "kind": i.kind} for i in self.inputs
            ],
            "note": self.note,
        }


# -- small parsers ----------------------------------------------------------------------

def parse_shape(text: str) -> tuple[tuple[int, ...], ...]:
    """``"1,3,224,224"`` -> ``((1, 3, 224, 224),)``; ``;`` separates several inputs.

    Raises:
        InputShapeError: not a list of positive integers.
    """
    shapes = []
    for part in text.replace(" ", "").replace("x", ",").split(";"):
        if not part:
            continue
        try:
            dims = tuple(int(d) for d in part.strip("()[]").split(",") if d)
        except ValueError:
            raise InputShapeError(f"bad input shape {text!r}: expected numbers like 1,3,224,224") from None
        if not dims or any(d < 1 for d in dims):
            raise InputShapeError(f"bad input shape {text!r}: every dimension must be >= 1, batch first")
        shapes.append(dims)
    if not shapes:
        raise InputShapeError(f"bad input shape {text!r}: expected numbers like 1,3,224,224")
    return tuple(shapes)


def looks_like_path(text: str) -> bool:
    """True when ``text`` names an existing file/folder or has the form of a path."""
    if Path(text).expanduser().exists():
        return True
    return "/" in text or "\\" in text or text.lower().endswith(_MODEL_SUFFIXES) or text.startswith(".")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    for line in text.splitlines():
        if "WeightsUnpickler error:" in line:
            return line.split("WeightsUnpickler error:", 1)[1].strip().split(". Please")[0]
    return text.splitlines()[0][:300] if text else type(exc).__name__



# -- recognising a format ---------------------------------------------------------------

def _check_readable(path: Path, what: str = "model file") -> None:
    if not path.exists():
        raise ModelFileError(f"{what} not found: {path}")
    if path.is_dir():
        raise ModelFileError(f"{path} is a folder, not a {what}")
    try:
        with path.open("rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise ModelFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    if path.stat().st_size == 0:
        raise ModelFileError(f"{path} is empty (0 bytes): not a model file")


def _zip_format(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            damaged = archive.testzip()  # checks every member's CRC: catches flipped bytes
        if damaged is not None:
            raise zipfile.BadZipFile(f"member {damaged} fails its CRC check")
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zipfile.LargeZipFile) as exc:
        raise ModelFileError(
            f"{path} is a truncated or corrupt archive ({exc}); it cannot be a complete "
            "TorchScript, torch.export or torch.save file"
        ) from None
    parts = [n.split("/", 1)[1] if "/" in n else n for n in names]
    if any(p.startswith("code/") for p in parts) and any(p == "constants.pkl" for p in parts):
        return "torchscript"
    if any(p.startswith("models/") and p.endswith(".json") for p in parts) or "archive_format" in parts:
        return "export"
    if "data.pkl" in parts:
        return "torch-save"
    raise ModelFileError(
        f"{path} is a zip archive but not a PyTorch file (no TorchScript code, torch.export "
        "program or torch.save data inside)"
    )


def _onnx_plausible(path: Path, head: bytes) -> bool:
    # A ModelProto starts with one of its field tags (ir_version is field 1: 0x08).
    if head[:1] not in (b"\x08", b"\x12", b"\x1a", b"\x22", b"\x28", b"\x32", b"\x3a", b"\x42") and path.suffix.lower() != ".onnx":
        return False
    return True


def _load_onnx_proto(path: Path) -> Any:
    """The ONNX graph without external data (cheap), or ``None`` without the onnx package.

    Raises:
        ModelFileError: not a valid ONNX model.
    """
    try:
        import onnx
    except ImportError:
        return None
    try:
        model = onnx.load_model_from_string(path.read_bytes())
    except Exception as exc:  # noqa: BLE001 - protobuf raises DecodeError and others
        raise ModelFileError(f"{path} is not a readable ONNX model (truncated or corrupt?): {_first_line(exc)}") from None
    if not (0 < model.ir_version < 100) or not model.graph.output:
        raise ModelFileError(f"{path} is not an ONNX model (no graph outputs)")
    return model


def detect_format(path: str | Path) -> str:
    """The format of a model file or folder, from its content.

    Returns one of :data:`FORMATS`, or ``torch-save`` for a ``torch.save`` file whose content
    (state dict or whole pickled module) is decided by :func:`resolve_user_model`.

    Raises:
        ModelFileError: missing, empty, unreadable, truncated, or of no known format.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        if (path / "config.json").is_file() and any((path / f).is_file() for f in _WEIGHT_FILES):
            return "huggingface"
        if (path / "config.json").is_file():
            raise ModelFileError(
                f"folder {path} has a config.json but no weights ({' or '.join(_WEIGHT_FILES[:2])})"
            )
        raise ModelFileError(
            f"{path} is a folder but not a Hugging Face model folder (it needs config.json and "
            "model.safetensors or pytorch_model.bin); give a model file instead"
        )
    _check_readable(path)
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(64)
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return _zip_format(path)
    if head[:6] == b"\x93NUMPY":
        raise ModelFileError(f"{path} is a NumPy array, not a model: pass it as an input with --input")
    if len(head) >= 9 and head[8:9] == b"{":
        (header_len,) = struct.unpack("<Q", head[:8])
        if header_len > size - 8:
            raise ModelFileError(f"{path} is a truncated safetensors file (header of {header_len} bytes, file of {size})")
        with path.open("rb") as fh:
            fh.seek(8)
            try:
                header = json.loads(fh.read(header_len))
            except (ValueError, UnicodeDecodeError):
                raise ModelFileError(f"{path} is a corrupt safetensors file (its header is not JSON)") from None
        if not isinstance(header, dict):
            raise ModelFileError(f"{path} is a corrupt safetensors file")
        tensors = [v for k, v in header.items() if k != "__metadata__"]
        end = max((int(t.get("data_offsets", [0, 0])[1]) for t in tensors if isinstance(t, dict)), default=0)
        if 8 + header_len + end > size:
            raise ModelFileError(f"{path} is a truncated safetensors file (data ends past the end of the file)")
        return "safetensors"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "torch-save"  # a legacy (non-zip) torch.save file, or a plain pickle
    if _onnx_plausible(path, head):
        proto = _load_onnx_proto(path)
        if proto is not None or path.suffix.lower() == ".onnx":
            return "onnx"
    raise ModelFileError(
        f"{path} is not a model file devicebench recognises (looked for TorchScript, torch.export "
        ".pt2, ONNX, safetensors, torch.save and Hugging Face folders)"
    )


# -- .pt2 safety ------------------------------------------------------------------------

def _pt2_pickled_members(path: Path) -> list[str]:
    """Members of a ``.pt2`` archive that ``torch.export.load`` would fully unpickle.

    ``torch.export.load`` reads weights and constants flagged ``use_pickle`` (and custom or
    opaque objects) with the unrestricted unpickler, and falls back to it for any
    ``.pt`` member that ``weights_only=True`` refuses; those members are listed here.
    """
    risky: list[str] = []
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            inner = name.split("/", 1)[1] if "/" in name else name
            if inner.endswith("_config.json") and inner.startswith("data/"):
                try:
                    config = json.loads(archive.read(name)).get("config", {})
                except (ValueError, AttributeError):
                    risky.append(name)
                    continue
                for key, meta in config.items():
                    path_name = str(meta.get("path_name", "")) if isinstance(meta, dict) else ""
                    if not isinstance(meta, dict) or meta.get("use_pickle") or path_name.startswith(("custom_obj", "opaque_obj")):
                        risky.append(f"{name}:{key}")
            elif inner.endswith(".pt") or inner.startswith("data/sample_inputs/"):
                try:
                    torch.load(io.BytesIO(archive.read(name)), map_location="cpu", weights_only=True)
                except Exception:  # noqa: BLE001 - any refusal means a full unpickle later
                    risky.append(name)
    return risky


# -- resolving inputs -------------------------------------------------------------------

def load_tensor_file(path: str | Path) -> tuple[torch.Tensor, ...]:
    """Tensors from a ``.npy`` file (``allow_pickle=False``) or a ``.pt`` file
    (``weights_only=True``: a tensor, or a tuple/list/dict of tensors).

    Raises:
        ModelFileError: missing, a folder, unreadable, or not tensors.
    """
    p = Path(path).expanduser()
    _check_readable(p, "input tensor file")
    with p.open("rb") as fh:
        head = fh.read(8)
    if head[:6] == b"\x93NUMPY":
        import numpy as np

        try:
            array = np.load(p, allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - truncated, object arrays...
            raise ModelFileError(f"cannot read input {p} safely: {_first_line(exc)}") from None
        return (torch.from_numpy(np.ascontiguousarray(array)),)
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle/zip errors of many kinds
        raise ModelFileError(f"cannot read input {p} as tensors (.npy or .pt, loaded safely): {_first_line(exc)}") from None
    if isinstance(obj, torch.Tensor):
        return (obj,)
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, (list, tuple)) and obj and all(isinstance(t, torch.Tensor) for t in obj):
        return tuple(obj)
    raise ModelFileError(f"{p} holds {type(obj).__name__}, not a tensor or a tuple of tensors")


def _dtype_name(dtype: torch.dtype) -> str:
    return _DTYPE_NAMES.get(dtype, str(dtype).removeprefix("torch."))


def _declared_onnx(path: Path) -> list[tuple[str, list[int | None], str]]:
    """ONNX graph inputs (initializers excluded): name, dims (``None`` when free), dtype."""
    proto = _load_onnx_proto(path)
    if proto is not None:
        import numpy as np
        from onnx import helper

        inits = {i.name for i in proto.graph.initializer}
        out = []
        for value in proto.graph.input:
            if value.name in inits:
                continue
            tensor = value.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in tensor.shape.dim]
            try:
                dtype = _dtype_name(torch.from_numpy(np.zeros(0, helper.tensor_dtype_to_np_dtype(tensor.elem_type))).dtype)
            except Exception:  # noqa: BLE001 - unusual element types
                dtype = "float32"
            out.append((value.name, dims, dtype))
        return out
    from devicebench.workloads.onnxrt import OrtModule

    session = OrtModule(path).session
    kinds = {"tensor(float)": "float32", "tensor(int64)": "int64", "tensor(int32)": "int32",
             "tensor(float16)": "float16", "tensor(bool)": "bool", "tensor(double)": "float64"}
    return [(i.name, [d if isinstance(d, int) and d > 0 else None for d in i.shape], kinds.get(i.type, "float32"))
            for i in session.get_inputs()]


def _declared_export(path: Path) -> list[tuple[str, list[int | None], str]]:
    program = torch.export.load(str(path))
    user_inputs = set(program.graph_signature.user_inputs)
    out = []
    for node in program.graph.nodes:
        if node.op != "placeholder" or node.name not in user_inputs:
            continue
        val = node.meta.get("val")
        if not isinstance(val, torch.Tensor):
            raise ModelFileError(f"{path}: input {node.name!r} is not a tensor; devicebench feeds tensors only")
        dims: list[int | None] = []
        for d in val.shape:
            dims.append(int(d) if isinstance(d, int) else None)
        out.append((node.name, dims, _dtype_name(val.dtype)))
    return out


def _hf_inputs(folder: Path, spec: UserModelSpec) -> tuple[list[InputPlan], str | None]:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{folder / 'config.json'} is not readable JSON: {exc}") from None
    if not isinstance(config, dict) or "model_type" not in config:
        raise ModelFileError(f"{folder / 'config.json'} has no model_type: not a transformers model config")
    if config.get("auto_map"):
        raise ModelFileError(
            f"{folder} needs its own Python code (auto_map in config.json); devicebench never runs "
            "code from a model folder (trust_remote_code): use a standard transformers architecture"
        )
    if "num_channels" in config and "image_size" in config:
        size = config["image_size"]
        h, w = (size, size) if isinstance(size, int) else tuple(size)[:2]
        shape = spec.input_shapes[0] if spec.input_shapes else (1, int(config["num_channels"]), int(h), int(w))
        return [InputPlan("pixel_values", tuple(shape), "float32", "random", "random normal images")], None
    max_pos = int(config.get("max_position_embeddings") or 512)
    if spec.input_shapes:
        shape = spec.input_shapes[0]
        if len(shape) != 2:
            raise InputShapeError(f"a text model takes (batch, sequence) token ids, e.g. --input-shape 1,128; got {list(shape)}")
        batch, seq = shape
    else:
        batch, seq = 1, spec.seq_len or min(128, max_pos)
    if seq > max_pos:
        raise InputShapeError(f"{folder.name} takes sequences of at most {max_pos} tokens (max_position_embeddings); got {seq}")
    tokenizer = folder / "tokenizer.json"
    has_tok = tokenizer.is_file()
    source = f"English sentences, tokenizer of {folder.name}" if has_tok else "random token ids (no tokenizer.json in the folder)"
    plans = [InputPlan("input_ids", (batch, seq), "int64", "tokens", source),
             InputPlan("attention_mask", (batch, seq), "int64", "ones", "")]
    if "type_vocab_size" in config:
        plans.append(InputPlan("token_type_ids", (batch, seq), "int64", "zeros", ""))
    return plans, str(tokenizer) if has_tok else None


def _kind_for(name: str, dtype: str) -> str:
    if dtype.startswith(("float", "bfloat")):
        return "random"
    low = name.lower()
    if "input_ids" in low or low in ("ids", "tokens"):
        return "tokens"
    if "mask" in low or dtype == "bool":
        return "ones"
    return "zeros"


def _plans_from_declared(
    declared: list[tuple[str, list[int | None], str]], spec: UserModelSpec, what: str
) -> list[InputPlan]:
    """Input plans from what a file declares, checked against the user's shapes."""
    shapes = spec.input_shapes
    if shapes is not None and len(shapes) != len(declared):
        raise InputShapeError(
            f"the {what} takes {len(declared)} input(s) ({', '.join(_fmt_decl(d) for d in declared)}), "
            f"--input-shape gave {len(shapes)}"
        )
    plans = []
    for i, (name, dims, dtype) in enumerate(declared):
        if shapes is not None:
            shape = shapes[i]
            if len(shape) != len(dims) or any(d is not None and d != s for d, s in zip(dims, shape)):
                raise InputShapeError(
                    f"the {what} expects input {name!r} of shape {_fmt_dims(dims)}, got {list(shape)}"
                )
        else:
            if not dims:
                raise InputShapeError(f"input {name!r} of the {what} is a scalar; devicebench needs a batch dimension")
            free = [k for k, d in enumerate(dims) if d is None and k > 0]
            if free and _kind_for(name, dtype) in ("tokens", "ones", "zeros") and len(dims) == 2:
                dims = [dims[0], spec.seq_len or 128]
            elif free:
                raise InputShapeError(
                    f"the {what} leaves input {name!r} of shape {_fmt_dims(dims)} open: give --input-shape, "
                    f"e.g. --input-shape {','.join(str(d or 1 if k == 0 else d or 224) for k, d in enumerate(dims))}"
                )
            shape = tuple(d if d is not None else 1 for d in dims)
        if spec.input_dtypes:
            dtype = spec.input_dtypes[i if len(spec.input_dtypes) > 1 else 0]
        kind = _kind_for(name, dtype)
        source = "English sentences, BERT uncased WordPiece ids" if kind == "tokens" else ("random normal" if kind == "random" else kind)
        plans.append(InputPlan(name, tuple(shape), dtype, kind, source))
    return plans


def _fmt_dims(dims: Sequence[int | None]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def _fmt_decl(decl: tuple[str, list[int | None], str]) -> str:
    return f"{decl[0]} {_fmt_dims(decl[1])} {decl[2]}"


def _plans_from_user(spec: UserModelSpec, fmt: str) -> list[InputPlan]:
    if spec.input_files:
        plans = []
        for f in spec.input_files:
            for k, t in enumerate(load_tensor_file(f)):
                if t.dim() == 0:
                    raise InputShapeError(f"input {f} is a scalar; devicebench needs a batch dimension first")
                plans.append(InputPlan(f"{Path(f).name}[{k}]", tuple(t.shape), _dtype_name(t.dtype), "file", str(Path(f).expanduser().resolve())))
        return plans
    if spec.input_shapes:
        dtypes = spec.input_dtypes or ("float32",)
        if len(dtypes) not in (1, len(spec.input_shapes)):
            raise InputShapeError(f"--input-dtype gave {len(dtypes)} dtypes for {len(spec.input_shapes)} inputs")
        plans = []
        for i, shape in enumerate(spec.input_shapes):
            dtype = dtypes[i if len(dtypes) > 1 else 0]
            kind = _kind_for(f"input{i}", dtype)
            plans.append(InputPlan(f"input{i}", shape, dtype, kind, "random normal" if kind == "random" else kind))
        return plans
    raise InputShapeError(
        f"{'a TorchScript' if fmt == 'torchscript' else 'a pickled'} model does not record its input shape: "
        "give --input-shape (e.g. --input-shape 1,3,224,224) or --input FILE.npy"
    )


def _check_dtypes(spec: UserModelSpec) -> None:
    for name in spec.input_dtypes or ():
        if name not in INPUT_DTYPES:
            raise InputShapeError(f"unknown input dtype {name!r}: use one of {', '.join(sorted(set(_DTYPE_NAMES.values())))}")


# -- resolving a model file -------------------------------------------------------------

def _torch_load_restricted(path: Path) -> Any:
    """``torch.load(weights_only=True)``, whatever the file is called (torch picks a loader
    from a ``.safetensors`` suffix, so a file handle is passed then); memory-mapped when it can."""
    if path.suffix.lower() == ".safetensors" or not zipfile.is_zipfile(path):
        with path.open("rb") as fh:
            return torch.load(fh, map_location="cpu", weights_only=True)
    return torch.load(path, map_location="cpu", weights_only=True, mmap=True)


def _classify_torch_save(path: Path, spec: UserModelSpec) -> str:
    """``state-dict`` or ``pickle``; reads with the restricted unpickler only.

    Raises:
        ModelFileError: corrupt, or a pickle without ``trust_pickle``.
    """
    try:
        obj = _torch_load_restricted(path)
    except Exception as exc:  # noqa: BLE001 - the restricted unpickler refuses with many types
        import pickle

        refused = isinstance(exc, pickle.UnpicklingError) and "Weights only load failed" in str(exc)
        if not refused:
            raise ModelFileError(f"cannot read {path}: truncated or corrupt torch.save file ({_first_line(exc)})") from None
        if spec.trust_pickle:
            return "pickle"
        raise ModelFileError(
            f"{path.name} holds pickled Python objects, not only tensors (torch.load(weights_only=True) "
            f"refused: {_first_line(exc)}); unpickling it can run any code, so devicebench did not. "
            "If you trust this file, add --trust-pickle; better, save the model with torch.export.save, "
            "torch.jit.save or as a state dict with --arch"
        ) from None
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return "state-dict"
    raise ModelFileError(
        f"{path.name} holds a {type(obj).__name__}, not a model: expected a state dict, a whole module "
        "(with --trust-pickle), TorchScript, torch.export or ONNX"
    )


def resolve_user_model(spec: UserModelSpec) -> UserModelSpec:
    """Recognise the file, check it can be loaded safely, and plan its inputs.

    Runs in the parent before any worker starts, so that a bad file, a refused pickle or a
    wrong shape stops the command with one line. Nothing is unpickled here except with the
    restricted unpickler.

    Returns:
        ``spec`` with ``format``, ``inputs``, ``sha256`` and ``tokenizer`` filled in.

    Raises:
        ModelFileError: missing, corrupt, unknown or unsafe file; missing ``arch``.
        InputShapeError: inputs that do not fit what the file declares, or none given where
            the file records none.
        UnknownModelError: ``arch`` is not registered.
    """
    path = Path(spec.path).expanduser().resolve()
    spec = replace(spec, path=str(path))
    _check_dtypes(spec)
    fmt = detect_format(path)
    if fmt == "torch-save":
        fmt = _classify_torch_save(path, spec)
    note = ""
    tokenizer = None
    fixed = None
    if fmt in ("safetensors", "state-dict"):
        if not spec.arch:
            raise ModelFileError(
                f"{path.name} holds weights only ({fmt}), no architecture: add --arch NAME with a "
                "registered model (see `devicebench models`), or save the whole model with "
                "torch.export.save / torch.jit.save / ONNX"
            )
        entry = get_model_entry(spec.arch)
        if spec.input_shapes or spec.input_files:
            plans = _plans_from_user(spec, fmt)
        else:
            plans = [InputPlan(f"input{i}", tuple(s), "int64" if len(s) == 2 else "float32", "registry", entry.input.source)
                     for i, s in enumerate(entry.input.shapes(1))]
        weights_file = path
    elif fmt == "onnx":
        declared = _declared_onnx(path)
        plans = _file_or_declared(spec, declared, "ONNX model")
        weights_file = path
        fixed = _fixed_batch(declared)
    elif fmt == "export":
        risky = _pt2_pickled_members(path)
        if risky and not spec.trust_pickle:
            raise ModelFileError(
                f"{path.name} is a torch.export program with pickled members ({', '.join(risky[:3])}); "
                "torch.export.load would unpickle them, which can run any code, so devicebench did not. "
                "If you trust this file, add --trust-pickle"
            )
        try:
            declared = _declared_export(path)
        except (ModelFileError, InputShapeError):
            raise
        except Exception as exc:  # noqa: BLE001 - torch.export.load raises many types
            raise ModelFileError(f"cannot load torch.export program {path.name}: {_first_line(exc)}") from None
        plans = _file_or_declared(spec, declared, "exported program")
        weights_file = path
        fixed = _fixed_batch(declared)
    elif fmt == "huggingface":
        plans, tokenizer = _hf_inputs(path, spec)
        weights_file = next(path / f for f in _WEIGHT_FILES if (path / f).is_file())
    else:  # torchscript, pickle
        plans = _plans_from_user(spec, fmt)
        weights_file = path
        if fmt == "pickle":
            note = "whole pickled module, loaded with --trust-pickle"
    return replace(spec, format=fmt, inputs=tuple(plans), sha256=file_sha256(weights_file), tokenizer=tokenizer,
                   note=note, fixed_batch=fixed)


def _fixed_batch(declared: list[tuple[str, list[int | None], str]]) -> tuple[str, int, tuple[int | None, ...]] | None:
    for name, dims, _ in declared:
        if dims and dims[0] is not None:
            return name, dims[0], tuple(dims)
    return None


def _file_or_declared(spec: UserModelSpec, declared: list[tuple[str, list[int | None], str]], what: str) -> list[InputPlan]:
    if spec.input_files:
        plans = _plans_from_user(spec, "")
        shapes = tuple(p.shape for p in plans)
        _plans_from_declared(declared, replace(spec, input_shapes=shapes, input_dtypes=None), what)
        return plans
    return _plans_from_declared(declared, spec, what)


def check_batch_sizes(spec: UserModelSpec, batch_sizes: Sequence[int]) -> None:
    """Refuse batch sizes that the file fixes otherwise (ONNX / export with a static batch).

    Raises:
        InputShapeError: the model's batch dimension is fixed to another size.
    """
    if spec.fixed_batch is None:
        return
    name, batch, dims = spec.fixed_batch
    wrong = [b for b in batch_sizes if b != batch]
    if wrong:
        raise InputShapeError(
            f"the model fixes the batch size of input {name!r} to {batch} (shape {_fmt_dims(dims)}); "
            f"batch size {wrong[0]} cannot run: re-export it with a dynamic batch dimension"
        )


# -- inputs as an InputSpec ---------------------------------------------------------------

@dataclass(frozen=True)
class PlannedInput:
    """The :class:`~devicebench.workloads.registry.InputSpec` of a user model."""

    plans: tuple[InputPlan, ...]
    tokenizer: str | None = None
    _cache: dict[str, tuple[torch.Tensor, ...]] = field(default_factory=dict, compare=False, repr=False)

    def shapes(self, batch_size: int) -> list[list[int]]:
        return [p.with_batch(batch_size) for p in self.plans]

    @property
    def source(self) -> str:
        kinds = sorted({p.source or p.kind for p in self.plans if p.kind not in ("ones", "zeros")})
        return "; ".join(kinds) or "constant inputs"

    def _file(self, path: str) -> tuple[torch.Tensor, ...]:
        if path not in self._cache:
            self._cache[path] = load_tensor_file(path)
        return self._cache[path]

    def example(self, batch_size: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
        gen = torch.Generator().manual_seed(seed)
        out: list[torch.Tensor] = []
        files_used: dict[str, int] = {}
        for plan in self.plans:
            shape = plan.with_batch(batch_size)
            dtype = INPUT_DTYPES.get(plan.dtype, torch.float32)
            if plan.kind == "file":
                k = files_used.get(plan.source, 0)
                files_used[plan.source] = k + 1
                tensor = self._file(plan.source)[k]
                reps = -(-batch_size // tensor.shape[0])
                out.append(tensor.repeat(reps, *([1] * (tensor.dim() - 1)))[:batch_size].contiguous())
            elif plan.kind == "tokens":
                out.append(_token_ids(shape, self.tokenizer, seed))
            elif plan.kind == "ones":
                out.append(torch.ones(shape, dtype=dtype))
            elif plan.kind == "zeros":
                out.append(torch.zeros(shape, dtype=dtype))
            elif dtype.is_floating_point:
                out.append(torch.randn(shape, generator=gen).to(dtype))
            else:
                out.append(torch.randint(0, 2, shape, generator=gen).to(dtype))
        return tuple(out)


def _token_ids(shape: list[int], tokenizer: str | None, seed: int) -> torch.Tensor:
    """Real sentences through the folder's tokenizer (or BERT's), ``shape = [batch, seq]``."""
    from devicebench.workloads.text import SENTENCES, tokenize_batch

    batch, seq = shape[0], shape[-1]
    if tokenizer is None:
        return tokenize_batch(batch, seq, seed=seed)[0]
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(tokenizer)
    tok.no_padding()
    tok.enable_truncation(seq)
    pad = tok.token_to_id("[PAD]") or tok.token_to_id("<pad>") or 0
    ids = torch.full((batch, seq), pad, dtype=torch.long)
    repeat = 1 + seq // 100
    for row in range(batch):
        text = " ".join(SENTENCES[(row + seed + k) % len(SENTENCES)] for k in range(len(SENTENCES) * repeat))
        encoded = tok.encode(text).ids[:seq]
        ids[row, : len(encoded)] = torch.tensor(encoded)
    return ids


# -- loading (in the worker) --------------------------------------------------------------

class HFModule(nn.Module):
    """``module(*tensors) -> first output tensor`` around a transformers model."""

    def __init__(self, model: nn.Module, input_names: Sequence[str]) -> None:
        super().__init__()
        self.model = model
        self.input_names = list(input_names)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        out = self.model(**dict(zip(self.input_names, inputs)))
        return out[0] if not isinstance(out, torch.Tensor) else out


def _load_pickle(path: Path) -> nn.Module:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except (AttributeError, ModuleNotFoundError, ImportError) as exc:
        raise ModelFileError(
            f"cannot unpickle {path.name}: {_first_line(exc)} (the model's class must be importable "
            "by name, e.g. from an installed package: save it with torch.export.save instead)"
        ) from None
    if not isinstance(obj, nn.Module):
        raise ModelFileError(f"{path.name} holds a {type(obj).__name__}, not an nn.Module")
    return obj


def load_user_model(spec: UserModelSpec, *, device: str = "cpu", threads: int | None = None) -> Workload:
    """Build a resolved user model (in the worker) as a :class:`Workload`.

    Args:
        spec: a spec returned by :func:`resolve_user_model` (resolved here otherwise).
        device: where it will run (ONNX Runtime builds its session for that device).
        threads: intra-op threads for ONNX Runtime.

    Raises:
        DeviceUnavailableError: the format cannot run on that device here (ONNX on a device
            without an onnxruntime provider).
        ModelFileError: the file cannot be loaded.
    """
    if not spec.format:
        spec = resolve_user_model(spec)
    path = Path(spec.path)
    fmt = spec.format
    kind = device.partition(":")[0]
    task = f"user model ({fmt})"
    if fmt == "onnx":
        from devicebench.workloads.onnxrt import OrtModule, ort_available, ort_providers

        if not ort_available():
            raise ModelFileError("running ONNX models needs onnxruntime: pip install 'devicebench[onnx]'")
        providers = ort_providers()
        if kind != "cpu" and not (kind == "cuda" and "CUDAExecutionProvider" in providers):
            raise DeviceUnavailableError(
                f"ONNX Runtime here cannot run on {device} (providers: {', '.join(providers)}): "
                + ("install onnxruntime-gpu for the CUDA provider" if kind == "cuda" else "ONNX runs on cpu or cuda only")
            )
        module: nn.Module = OrtModule(path, device=device, threads=threads)
    elif fmt == "torchscript":
        try:
            module = torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:  # noqa: BLE001 - TorchScript raises RuntimeError and others
            raise ModelFileError(f"cannot load TorchScript {path.name}: {_first_line(exc)}") from None
    elif fmt == "export":
        if _pt2_pickled_members(path) and not spec.trust_pickle:
            raise ModelFileError(f"{path.name} has pickled members: refused without --trust-pickle")
        try:
            module = torch.export.load(str(path)).module()
        except Exception as exc:  # noqa: BLE001
            raise ModelFileError(f"cannot load torch.export program {path.name}: {_first_line(exc)}") from None
        # An exported graph fixed its train/eval behaviour when it was exported, and its
        # module refuses eval(); the measurement calls eval(), which is a no-op here.
        module.eval = types.MethodType(lambda self, *a, **k: self, module)  # type: ignore[method-assign]
    elif fmt == "huggingface":
        try:
            from transformers import AutoModel
        except ImportError:
            raise ModelFileError("Hugging Face folders need transformers: pip install 'devicebench[nlp]'") from None
        try:
            hf = AutoModel.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
        except Exception as exc:  # noqa: BLE001 - transformers raises many types
            raise ModelFileError(f"transformers cannot load {path}: {_first_line(exc)}") from None
        module = HFModule(hf, [p.name for p in spec.inputs])
    elif fmt in ("safetensors", "state-dict"):
        entry = get_model_entry(spec.arch or "")
        module = entry.builder()
        if fmt == "safetensors":
            try:
                from safetensors.torch import load_file
            except ImportError:
                raise ModelFileError("reading safetensors needs the safetensors package: pip install safetensors") from None
            try:
                state = dict(load_file(str(path)))
            except Exception as exc:  # noqa: BLE001
                raise ModelFileError(f"cannot read {path.name}: {_first_line(exc)}") from None
        else:
            try:
                obj = _torch_load_restricted(path)
            except Exception as exc:  # noqa: BLE001
                raise ModelFileError(f"cannot read {path.name} safely: {_first_line(exc)}") from None
            for key in ("state_dict", "model_state_dict", "model"):
                if isinstance(obj, dict) and isinstance(obj.get(key), dict):
                    obj = obj[key]
                    break
            state = obj
        if state and all(k.startswith("module.") for k in state):  # saved from DataParallel/DDP
            state = {k.removeprefix("module."): v for k, v in state.items()}
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            lines = [ln.strip() for ln in str(exc).strip().splitlines()]
            raise ModelFileError(f"weights {path.name} do not fit --arch {spec.arch}: {lines[1] if len(lines) > 1 else lines[0]}") from None
        task = f"{entry.task} (weights from {fmt})"
    elif fmt == "pickle":
        if not spec.trust_pickle:
            raise ModelFileError(f"{path.name} is a pickle: refused without --trust-pickle")
        module = _load_pickle(path)
    else:
        raise ModelFileError(f"unknown model format {fmt!r}")
    module.eval()
    if spec.arch and fmt in ("safetensors", "state-dict") and not (spec.input_shapes or spec.input_files):
        input_spec: Any = get_model_entry(spec.arch).input
    else:
        input_spec = PlannedInput(spec.inputs, spec.tokenizer)
    params = sum(p.numel() for p in module.parameters()) if fmt != "onnx" else _onnx_parameters(path)
    return Workload(
        name=spec.name,
        module=module,
        input=input_spec,
        task=task,
        weights=f"file:{spec.name} sha256:{spec.sha256[:12]}",
        parameters=params,
    )


def _onnx_parameters(path: Path) -> int:
    try:
        import onnx
        from onnx import numpy_helper  # noqa: F401

        proto = onnx.load_model_from_string(path.read_bytes())
    except Exception:  # noqa: BLE001 - a count is best effort
        return 0
    total = 0
    for init in proto.graph.initializer:
        n = 1
        for d in init.dims:
            n *= d
        total += n
    return total
