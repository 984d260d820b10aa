"""Resolving a user model file (in the parent) and loading it (in each worker).

Both are short: recognise the format, look up its registered loader, call it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from devicebench.workloads.files import file_sha256
from devicebench.workloads.registry import Workload

# Importing the module registers the formats.
from devicebench.workloads.userfile import loaders as _loaders  # noqa: F401
from devicebench.workloads.userfile.detect import classify_torch_save, detect_format
from devicebench.workloads.userfile.inputs import check_dtypes
from devicebench.workloads.userfile.loader_registry import get_loader
from devicebench.workloads.userfile.spec import UserModelSpec
from devicebench.workloads.userfile.tensors import PlannedInput

__all__ = ["load_user_model", "resolve_user_model"]


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
    check_dtypes(spec)
    fmt = detect_format(path)
    if fmt == "torch-save":
        fmt = classify_torch_save(path, spec)
    resolved = get_loader(fmt).resolve(path, spec)
    return replace(spec, format=fmt, inputs=tuple(resolved.inputs), sha256=file_sha256(resolved.weights_file),
                   tokenizer=resolved.tokenizer, note=resolved.note, fixed_batch=resolved.fixed_batch)


def load_user_model(spec: UserModelSpec, *, device: str = "cpu", threads: int | None = None) -> Workload:
    """Build a resolved user model (in the worker) as a :class:`Workload`.

    Args:
        spec: a spec returned by :func:`resolve_user_model` (resolved here otherwise).
        device: where it will run (ONNX Runtime builds its session for that device).
        threads: intra-op threads for ONNX Runtime.

    Raises:
        DeviceUnavailableError: the format cannot run on that device here (ONNX on a device
            without an onnxruntime provider).
        ModelFileError: the file cannot be loaded, or its format is unknown.
    """
    if not spec.format:
        spec = resolve_user_model(spec)
    else:
        # The parent checked this file, but the worker reads it again: the same checks
        # (colliding archive members above all) run before the loader touches it.
        detect_format(Path(spec.path))
    loaded = get_loader(spec.format).load(Path(spec.path), spec, device=device, threads=threads)
    module = loaded.module
    module.eval()
    return Workload(
        name=spec.name,
        module=module,
        input=loaded.input if loaded.input is not None else PlannedInput(spec.inputs, spec.tokenizer),
        task=loaded.task or f"user model ({spec.format})",
        weights=f"file:{spec.name} sha256:{spec.sha256[:12]}",
        parameters=loaded.parameters if loaded.parameters is not None else sum(p.numel() for p in module.parameters()),
    )
