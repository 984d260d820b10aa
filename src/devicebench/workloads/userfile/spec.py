"""What a user model is: the spec that travels to each worker, its planned inputs, and the
small parsers of the command line's ``--input-shape`` / ``--input-dtype`` / model argument."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from devicebench.errors import InputShapeError

__all__ = [
    "DTYPE_NAMES",
    "INPUT_DTYPES",
    "FixedBatch",
    "InputPlan",
    "UserModelSpec",
    "dtype_name",
    "looks_like_path",
    "parse_shape",
]

#: ``--input-dtype`` names and the torch dtypes they mean.
INPUT_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32, "float": torch.float32, "fp32": torch.float32,
    "float16": torch.float16, "half": torch.float16, "fp16": torch.float16,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float64": torch.float64, "double": torch.float64,
    "int64": torch.int64, "long": torch.int64, "int32": torch.int32, "int": torch.int32,
    "int8": torch.int8, "uint8": torch.uint8, "bool": torch.bool,
}
#: The first (canonical) name of each dtype in :data:`INPUT_DTYPES`.
DTYPE_NAMES = {v: k for k, v in reversed(list(INPUT_DTYPES.items()))}

_MODEL_SUFFIXES = (".pt", ".pth", ".pt2", ".onnx", ".safetensors", ".bin", ".ckpt", ".jit", ".ts", ".torchscript")

#: ``(input name, batch, declared dims)`` of a file that fixes its batch size.
FixedBatch = tuple[str, int, tuple[int | None, ...]]


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
    fixed_batch: FixedBatch | None = None

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


def dtype_name(dtype: torch.dtype) -> str:
    """The ``--input-dtype`` name of a torch dtype (``torch.float32`` -> ``float32``)."""
    return DTYPE_NAMES.get(dtype, str(dtype).removeprefix("torch."))
