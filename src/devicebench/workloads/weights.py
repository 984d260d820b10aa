"""Do these weights fit that architecture? Checked in the parent, before any worker starts.

A weights-only file (state dict or safetensors) given with ``--arch NAME`` (or ``--weights``
for a registered model) is compared with the registered model's own state dict: the file's
names and shapes are read safely (safetensors' header, or ``torch.load(weights_only=True)``),
the model's are those of the architecture built on the ``meta`` device (no memory, no
computation, no device touched). A mismatch is one line, exit 2, and no run is stored:
there is nothing to measure.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from devicebench.errors import ModelFileError
from devicebench.workloads.registry import get_model_entry, load_state_dict_file

__all__ = ["file_shapes", "arch_shapes", "check_weights_fit", "check_shapes_fit", "mismatch"]

#: How many example names a mismatch message shows of each kind.
_EXAMPLES = 2


def file_shapes(path: Path, *, safetensors: bool | None = None) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes in a weights file, read without running anything from it.

    ``safetensors``: the file's format (None: from its suffix).

    Raises:
        UserError: the file cannot be read safely.
    """
    if safetensors if safetensors is not None else path.suffix == ".safetensors":
        try:
            from safetensors import safe_open
        except ImportError:
            raise ModelFileError("reading .safetensors needs the safetensors package: pip install safetensors") from None
        try:
            with safe_open(str(path), framework="pt") as fh:  # the header only
                shapes = {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}  # noqa: SIM118
        except Exception as exc:  # noqa: BLE001 - safetensors raises several types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelFileError(f"cannot read weights {path.name}: {first}") from None
    else:
        shapes = {k: tuple(v.shape) for k, v in load_state_dict_file(path).items()}
    return shapes


def arch_shapes(arch: str) -> dict[str, tuple[int, ...]]:
    """Names and shapes of a registered model's state dict, built on the meta device.

    Raises:
        UnknownModelError: ``arch`` is not registered.
    """
    import torch

    entry = get_model_entry(arch)
    try:
        with torch.device("meta"):
            module = entry.builder()
    except Exception:  # noqa: BLE001 - a builder that cannot run on meta: build it on the CPU
        module = entry.builder()
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def _shape(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def mismatch(found: Mapping[str, tuple[int, ...]], expected: Mapping[str, tuple[int, ...]]) -> str | None:
    """What differs between a file's tensors and a model's, in one line (None: they fit)."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    reshaped = [k for k in expected if k in found and tuple(found[k]) != tuple(expected[k])]
    if not (missing or unexpected or reshaped):
        return None
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing key{'s' if len(missing) != 1 else ''} "
                     f"(e.g. {', '.join(missing[:_EXAMPLES])})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:_EXAMPLES])})")
    if reshaped:
        k = reshaped[0]
        parts.append(f"{len(reshaped)} of another shape (e.g. {k}: {_shape(found[k])} in the file, "
                     f"{_shape(expected[k])} in the model)")
    return ", ".join(parts)


def check_weights_fit(path: str | Path, arch: str, *, flag: str = "--arch") -> None:
    """Raise unless the weights at ``path`` load strictly into the registered model ``arch``.

    Raises:
        ModelFileError: ``weights X do not match --arch NAME: N missing keys (e.g. ...),
            M unexpected (e.g. ...)`` (one line), or the file cannot be read.
        UnknownModelError: ``arch`` is not registered.
    """
    path = Path(path)
    check_shapes_fit(file_shapes(path), arch, path.name, flag=flag)


def check_shapes_fit(shapes: Mapping[str, tuple[int, ...]], arch: str, name: str, *, flag: str = "--arch") -> None:
    """:func:`check_weights_fit` for tensor shapes already read from the file ``name``."""
    if shapes and all(k.startswith("module.") for k in shapes):  # saved from DataParallel/DDP
        shapes = {k.removeprefix("module."): v for k, v in shapes.items()}
    problem = mismatch(shapes, arch_shapes(arch))
    if problem is not None:
        path = Path(name)
        target = f"{flag} {arch}" if flag else arch
        raise ModelFileError(f"weights {path.name} do not match {target}: {problem}")
