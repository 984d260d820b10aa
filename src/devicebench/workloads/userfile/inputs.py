"""Planning a user model's inputs (in the parent, when the file is resolved).

Inputs come from what the file declares (ONNX graph inputs, torch.export placeholders, a
Hugging Face ``config.json``), checked against the user's ``--input-shape``, or from the
user alone (``--input-shape`` / ``--input-dtype`` / ``--input`` tensor files) where the file
records none. :class:`~devicebench.workloads.userfile.tensors.PlannedInput` then makes the
tensors in each worker.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from devicebench.errors import InputShapeError, ModelFileError
from devicebench.workloads.userfile.detect import load_onnx_proto
from devicebench.workloads.userfile.spec import (
    DTYPE_NAMES,
    INPUT_DTYPES,
    FixedBatch,
    InputPlan,
    UserModelSpec,
    dtype_name,
)
from devicebench.workloads.userfile.tensors import load_tensor_file

__all__ = [
    "Declared",
    "check_batch_sizes",
    "check_dtypes",
    "declared_export",
    "declared_onnx",
    "declared_plans",
    "hf_inputs",
    "plans_from_user",
]

#: Inputs a file declares: ``(name, dims, dtype name)``, ``None`` for a dynamic dimension.
Declared = list[tuple[str, list[int | None], str]]


# -- what a file declares -----------------------------------------------------------------

def declared_onnx(path: Path) -> Declared:
    """ONNX graph inputs (initializers excluded): name, dims (``None`` when free), dtype.

    Raises:
        ModelFileError: not a valid ONNX model.
    """
    proto = load_onnx_proto(path)
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
                dtype = dtype_name(torch.from_numpy(np.zeros(0, helper.tensor_dtype_to_np_dtype(tensor.elem_type))).dtype)
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


def declared_export(path: Path) -> Declared:
    """The user inputs of a ``torch.export`` program (loads it: check its members first).

    Raises:
        ModelFileError: an input is not a tensor.
    """
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
        out.append((node.name, dims, dtype_name(val.dtype)))
    return out


def hf_inputs(folder: Path, spec: UserModelSpec) -> tuple[list[InputPlan], str | None]:
    """Inputs of a Hugging Face folder from its ``config.json``, and its tokenizer file.

    Images get ``pixel_values``; text models token ids (batch, seq), a mask of ones, and
    ``token_type_ids`` of zeros when the config has token types.

    Raises:
        ModelFileError: unreadable config, not a transformers config, or one that needs
            its own code (``auto_map``).
        InputShapeError: a shape that is not (batch, seq), or too long a sequence.
    """
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ModelFileError(f"{folder / 'config.json'} is not readable JSON: {str(exc)[:200]}") from None
    if not isinstance(config, dict) or "model_type" not in config:
        raise ModelFileError(f"{folder / 'config.json'} has no model_type: not a transformers model config")
    if config.get("auto_map"):
        raise ModelFileError(
            f"{folder} needs its own Python code (auto_map in config.json); devicebench never runs "
            "code from a model folder (trust_remote_code): use a standard transformers architecture"
        )
    if not isinstance(config["model_type"], str):
        raise ModelFileError(f"{folder / 'config.json'}: model_type must be a string")
    if "num_channels" in config and "image_size" in config:
        size = config["image_size"]
        sizes = [size, size] if type(size) is int else size
        if not (isinstance(sizes, list) and len(sizes) >= 2 and all(type(v) is int and v > 0 for v in sizes[:2])):
            raise ModelFileError(f"{folder / 'config.json'}: image_size must be a positive integer or a list of two")
        h, w = sizes[:2]
        shape = spec.input_shapes[0] if spec.input_shapes else (1, _positive(config, "num_channels", folder), h, w)
        return [InputPlan("pixel_values", tuple(shape), "float32", "random", "random normal images")], None
    max_pos = _positive(config, "max_position_embeddings", folder) if config.get("max_position_embeddings") else 512
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


def _positive(config: dict[str, Any], key: str, folder: Path) -> int:
    """``config[key]`` as a positive integer, or a one-line error naming the field."""
    value = config.get(key)
    if type(value) is not int or value <= 0:
        raise ModelFileError(f"{folder / 'config.json'}: {key} must be a positive integer, got {str(value)[:40]!r}")
    return value


# -- input plans --------------------------------------------------------------------------

def _kind_for(name: str, dtype: str) -> str:
    if dtype.startswith(("float", "bfloat")):
        return "random"
    low = name.lower()
    if "input_ids" in low or low in ("ids", "tokens"):
        return "tokens"
    if "mask" in low or dtype == "bool":
        return "ones"
    return "zeros"


def _plans_from_declared(declared: Declared, spec: UserModelSpec, what: str) -> list[InputPlan]:
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


def plans_from_user(spec: UserModelSpec, fmt: str) -> list[InputPlan]:
    """Inputs from the user's ``--input`` files, else ``--input-shape`` / ``--input-dtype``.

    Raises:
        ModelFileError: an input file cannot be read as tensors.
        InputShapeError: neither was given (``fmt`` records no shapes), a scalar input, or
            a count of dtypes that fits no count of shapes.
    """
    if spec.input_files:
        plans = []
        for f in spec.input_files:
            for k, t in enumerate(load_tensor_file(f)):
                if t.dim() == 0:
                    raise InputShapeError(f"input {f} is a scalar; devicebench needs a batch dimension first")
                plans.append(InputPlan(f"{Path(f).name}[{k}]", tuple(t.shape), dtype_name(t.dtype), "file", str(Path(f).expanduser().resolve())))
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


def check_dtypes(spec: UserModelSpec) -> None:
    """Check the ``--input-dtype`` names.

    Raises:
        InputShapeError: a name that is not in :data:`INPUT_DTYPES`.
    """
    for name in spec.input_dtypes or ():
        if name not in INPUT_DTYPES:
            raise InputShapeError(f"unknown input dtype {name!r}: use one of {', '.join(sorted(set(DTYPE_NAMES.values())))}")


def _fixed_batch(declared: Declared) -> FixedBatch | None:
    for name, dims, _ in declared:
        if dims and dims[0] is not None:
            return name, dims[0], tuple(dims)
    return None


def _file_or_declared(spec: UserModelSpec, declared: Declared, what: str) -> list[InputPlan]:
    if spec.input_files:
        plans = plans_from_user(spec, "")
        shapes = tuple(p.shape for p in plans)
        _plans_from_declared(declared, replace(spec, input_shapes=shapes, input_dtypes=None), what)
        return plans
    return _plans_from_declared(declared, spec, what)


def declared_plans(spec: UserModelSpec, declared: Declared, what: str) -> tuple[list[InputPlan], FixedBatch | None]:
    """Inputs of a file that declares them (ONNX, torch.export), and its fixed batch if any.

    ``--input`` files and ``--input-shape`` are checked against the declared inputs;
    ``what`` names the file in messages (``ONNX model``, ``exported program``).

    Raises:
        ModelFileError: an input file cannot be read as tensors.
        InputShapeError: inputs that do not fit the declared ones, or open dimensions
            and no shape given.
    """
    return _file_or_declared(spec, declared, what), _fixed_batch(declared)


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
