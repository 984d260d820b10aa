"""Recognising a user model's format from its content: magic bytes, zip members, folder files.

Never from the name alone. Also the safety checks that decide, without unpickling anything
with the unrestricted unpickler, whether a ``torch.save`` file is a state dict or a whole
pickled module, and whether a ``.pt2`` archive holds pickled members.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from pathlib import Path
from typing import Any

import torch

from devicebench.errors import ModelFileError
from devicebench.workloads.userfile.spec import UserModelSpec

__all__ = [
    "WEIGHT_FILES",
    "archive_members",
    "check_safetensors_header",
    "check_readable",
    "classify_torch_save",
    "detect_format",
    "first_line",
    "load_onnx_proto",
    "pt2_pickled_members",
    "torch_load_restricted",
    "unwrap_checkpoint",
]

#: Weights files of a Hugging Face model folder, in the order they are looked for.
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json",
                "pytorch_model.bin.index.json")


def first_line(exc: BaseException) -> str:
    """The message of ``exc`` in one line (the refused global of a ``weights_only`` load)."""
    text = str(exc).strip()
    for line in text.splitlines():
        if "WeightsUnpickler error:" in line:
            return line.split("WeightsUnpickler error:", 1)[1].strip().split(". Please")[0]
    return text.splitlines()[0][:300] if text else type(exc).__name__


# -- recognising a format ---------------------------------------------------------------

def check_readable(path: Path, what: str = "model file") -> None:
    """Check that ``path`` is a readable, non-empty file.

    Raises:
        ModelFileError: missing, a folder, unreadable or empty.
    """
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


def _torch_records(path: Path) -> list[str]:
    """Member names as torch's own zip reader (miniz, used by ``torch.load``, ``torch.jit.load``
    and ``torch.export.load``) lists them, without the archive's top folder."""
    try:
        with path.open("rb") as fh:  # a file object: torch cannot take a name that is not UTF-8
            return list(torch._C.PyTorchFileReader(fh).get_all_records())
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError and others
        raise ModelFileError(f"{path} is a zip archive that torch's reader refuses ({first_line(exc)})") from None


def archive_members(path: Path, what: str = "archive") -> list[str]:
    """The member names of a zip archive, once it is known that every reader sees the same ones.

    Python's ``zipfile`` returns the *last* of two members with the same name; torch's reader
    (miniz) finds a name case-insensitively, by a binary search over its sorted directory, so
    of two colliding members it may return either (which one depends on the other members).
    An archive whose names collide exactly or differ only in case could show one member to a
    safety check and another to the loader, so it is refused before anything in it is read.

    Raises:
        ModelFileError: not a readable zip, a member fails its CRC, or two names collide.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            seen: dict[str, str] = {}
            for name in names:
                key = name.casefold()
                if key in seen:
                    same = "the same name" if seen[key] == name else f"names that differ only in case ({seen[key]!r})"
                    raise ModelFileError(
                        f"{path} holds two members with {same}: {name!r}; a reader could take either, "
                        f"so this {what} is refused before anything in it is read"
                    )
                seen[key] = name
            damaged = archive.testzip()  # checks every member's CRC: catches flipped bytes
        if damaged is not None:
            raise zipfile.BadZipFile(f"member {damaged} fails its CRC check")
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zipfile.LargeZipFile, NotImplementedError,
            RuntimeError) as exc:
        raise ModelFileError(f"{path} is a truncated or corrupt {what} ({first_line(exc)})") from None
    return names


def _zip_format(path: Path) -> str:
    names = archive_members(path, "archive (not a complete TorchScript, torch.export or torch.save file)")
    parts = [n.split("/", 1)[1] if "/" in n else n for n in names]
    fmt = ""
    if any(p.startswith("code/") for p in parts) and any(p == "constants.pkl" for p in parts):
        fmt = "torchscript"
    elif any(p.startswith("models/") and p.endswith(".json") for p in parts) or "archive_format" in parts:
        fmt = "export"
    elif "data.pkl" in parts:
        fmt = "torch-save"
    if not fmt:
        raise ModelFileError(
            f"{path} is a zip archive but not a PyTorch file (no TorchScript code, torch.export "
            "program or torch.save data inside)"
        )
    # The loader reads what torch's reader lists: it must be what was just checked.
    if sorted(_torch_records(path)) != sorted(parts):
        raise ModelFileError(
            f"{path}: torch's zip reader and Python's list different members; refused before anything was loaded"
        )
    return fmt


def _onnx_plausible(path: Path, head: bytes) -> bool:
    # A ModelProto starts with one of its field tags (ir_version is field 1: 0x08).
    return head[:1] in (b"\x08", b"\x12", b"\x1a", b"\x22", b"\x28", b"\x32", b"\x3a", b"\x42") or path.suffix.lower() == ".onnx"


def load_onnx_proto(path: Path) -> Any:
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
        raise ModelFileError(f"{path} is not a readable ONNX model (truncated or corrupt?): {first_line(exc)}") from None
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
        if (path / "config.json").is_file() and any((path / f).is_file() for f in WEIGHT_FILES):
            return "huggingface"
        if (path / "config.json").is_file():
            raise ModelFileError(
                f"folder {path} has a config.json but no weights ({' or '.join(WEIGHT_FILES[:2])})"
            )
        raise ModelFileError(
            f"{path} is a folder but not a Hugging Face model folder (it needs config.json and "
            "model.safetensors or pytorch_model.bin); give a model file instead"
        )
    check_readable(path)
    with path.open("rb") as fh:
        head = fh.read(64)
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return _zip_format(path)
    if head[:6] == b"\x93NUMPY":
        raise ModelFileError(f"{path} is a NumPy array, not a model: pass it as an input with --input")
    if len(head) >= 9 and head[8:9] == b"{":
        check_safetensors_header(path)
        return "safetensors"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "torch-save"  # a legacy (non-zip) torch.save file, or a plain pickle
    if _onnx_plausible(path, head):
        proto = load_onnx_proto(path)
        if proto is not None or path.suffix.lower() == ".onnx":
            return "onnx"
    raise ModelFileError(
        f"{path} is not a model file devicebench recognises (looked for TorchScript, torch.export "
        ".pt2, ONNX, safetensors, torch.save and Hugging Face folders)"
    )


#: The safetensors format's own limit on its JSON header (bytes).
SAFETENSORS_MAX_HEADER = 100_000_000


def check_safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file, checked as the format defines it.

    Raises:
        ModelFileError: a header length past the file or over 100 MB, a header that is not
            a JSON object, nested too deep, or a tensor entry whose ``dtype``, ``shape`` or
            ``data_offsets`` are of the wrong type or point outside the file.
    """
    size = path.stat().st_size
    with path.open("rb") as fh:
        (header_len,) = struct.unpack("<Q", fh.read(8).ljust(8, b"\0"))
        if header_len > size - 8 or header_len > SAFETENSORS_MAX_HEADER:
            raise ModelFileError(f"{path} is a truncated or corrupt safetensors file (header of {header_len} bytes, "
                                 f"file of {size})")
        raw = fh.read(header_len)
    try:
        header = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ModelFileError(f"{path} is a corrupt safetensors file (its header is not JSON)") from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{path} is a corrupt safetensors file (its header is not a JSON object)")
    data_size = size - 8 - header_len
    for name, entry in header.items():
        if name == "__metadata__":
            if not isinstance(entry, dict) or not all(isinstance(v, str) for v in entry.values()):
                raise ModelFileError(f"{path} is a corrupt safetensors file (__metadata__ must map names to strings)")
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        shape = entry.get("shape") if isinstance(entry, dict) else None
        ok = (isinstance(entry, dict) and isinstance(entry.get("dtype"), str)
              and isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)
              and isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
              and 0 <= offsets[0] <= offsets[1])
        if not ok:
            raise ModelFileError(f"{path} is a corrupt safetensors file (tensor {str(name)[:60]!r} needs a dtype, "
                                 "a shape of sizes and data_offsets [begin, end])")
        if offsets[1] > data_size:
            raise ModelFileError(f"{path} is a truncated safetensors file (data of {str(name)[:60]!r} ends past "
                                 "the end of the file)")
    return header


# -- .pt2 safety ------------------------------------------------------------------------

#: Pickle streams start with PROTO (0x80) and a protocol number.
_PICKLE_HEADS = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


def pt2_pickled_members(path: Path) -> list[str]:
    """Members of a ``.pt2`` archive that ``torch.export.load`` would fully unpickle.

    ``torch.export.load`` reads weights and constants flagged ``use_pickle`` (and custom or
    opaque objects) with the unrestricted unpickler, and falls back to it for any
    ``.pt`` member that ``weights_only=True`` refuses; those members are listed here, as is
    any other member that holds a pickle (the format needs none). Members are read with
    torch's own reader, as ``torch.export.load`` reads them, after
    :func:`archive_members` refused colliding names.

    Raises:
        ModelFileError: the archive's member names collide, or readers disagree on them.
    """
    _zip_format(path)  # colliding names refused here, in the parent and again in each worker
    risky: list[str] = []
    with path.open("rb") as fh:
        reader = torch._C.PyTorchFileReader(fh)
        for name in reader.get_all_records():
            _check_pt2_member(name, bytes(reader.get_record(name)), risky)
    return risky


def _check_pt2_member(name: str, data: bytes, risky: list[str]) -> None:
    if name.endswith("_config.json") and name.startswith("data/"):
        try:
            config = json.loads(data).get("config", {})
            items = config.items()
        except (ValueError, AttributeError, UnicodeDecodeError):
            risky.append(name)
            return
        for key, meta in items:
            path_name = str(meta.get("path_name", "")) if isinstance(meta, dict) else ""
            if (not isinstance(meta, dict) or meta.get("use_pickle") or ".." in path_name
                    or path_name.startswith(("custom_obj", "opaque_obj"))):
                risky.append(f"{name}:{key}")
    elif name.endswith(".pt") or name.startswith("data/sample_inputs/"):
        try:
            torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 - any refusal means a full unpickle later
            risky.append(name)
    elif data[:2] in _PICKLE_HEADS or name.endswith((".pkl", ".pickle")):
        risky.append(name)  # a pickle where the format needs none


# -- what a torch.save file holds -------------------------------------------------------

def torch_load_restricted(path: Path) -> Any:
    """``torch.load(weights_only=True)``, whatever the file is called (torch picks a loader
    from a ``.safetensors`` suffix, so a file handle is passed then); memory-mapped when it can."""
    if path.suffix.lower() == ".safetensors" or not zipfile.is_zipfile(path):
        with path.open("rb") as fh:
            return torch.load(fh, map_location="cpu", weights_only=True)
    return torch.load(path, map_location="cpu", weights_only=True, mmap=True)


def unwrap_checkpoint(obj: Any) -> Any:
    """The state dict inside a training checkpoint (under ``state_dict``, ``model_state_dict``
    or ``model``), else ``obj`` itself."""
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(obj.get(key), dict):
                return obj[key]
    return obj


def classify_torch_save(path: Path, spec: UserModelSpec) -> str:
    """``state-dict`` or ``pickle``; reads with the restricted unpickler only.

    Raises:
        ModelFileError: corrupt, or a pickle without ``trust_pickle``.
    """
    try:
        obj = torch_load_restricted(path)
    except Exception as exc:  # noqa: BLE001 - the restricted unpickler refuses with many types
        import pickle

        refused = isinstance(exc, pickle.UnpicklingError) and "Weights only load failed" in str(exc)
        if not refused:
            raise ModelFileError(f"cannot read {path}: truncated or corrupt torch.save file ({first_line(exc)})") from None
        if spec.trust_pickle:
            return "pickle"
        raise ModelFileError(
            f"{path.name} holds pickled Python objects, not only tensors (torch.load(weights_only=True) "
            f"refused: {first_line(exc)}); unpickling it can run any code, so devicebench did not. "
            "If you trust this file, add --trust-pickle; better, save the model with torch.export.save, "
            "torch.jit.save or as a state dict with --arch"
        ) from None
    obj = unwrap_checkpoint(obj)
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return "state-dict"
    raise ModelFileError(
        f"{path.name} holds a {type(obj).__name__}, not a model: expected a state dict, a whole module "
        "(with --trust-pickle), TorchScript, torch.export or ONNX"
    )

