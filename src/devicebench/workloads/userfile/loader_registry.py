"""The loader registry: one :class:`FormatLoader` per model format, registered by name.

The same habit as the model registry's
:func:`~devicebench.workloads.registry.register_model`: a format is a subclass of
:class:`FormatLoader` decorated with :func:`register_loader`. Its ``resolve`` runs once in the
parent (safety checks, inputs, the file to hash) and its ``load`` in each worker (the
``nn.Module``). The formats themselves are in :mod:`devicebench.workloads.userfile.loaders`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from torch import nn

from devicebench.errors import ModelFileError
from devicebench.workloads.registry import InputSpec
from devicebench.workloads.userfile.inputs import plans_from_user
from devicebench.workloads.userfile.spec import FixedBatch, InputPlan, UserModelSpec

__all__ = [
    "FormatLoader",
    "Loaded",
    "Resolved",
    "get_loader",
    "register_loader",
    "registered_formats",
]


@dataclass(frozen=True)
class Resolved:
    """What a format's ``resolve`` found, in the parent.

    Attributes:
        inputs: the planned inputs, batch first.
        weights_file: the file whose SHA-256 identifies the model (a folder's weights file).
        tokenizer: tokenizer file for text inputs, when there is one.
        note: how the file is loaded, for the record (e.g. with ``--trust-pickle``).
        fixed_batch: ``(input name, batch, declared dims)`` when the file fixes the batch size.
    """

    inputs: Sequence[InputPlan]
    weights_file: Path
    tokenizer: str | None = None
    note: str = ""
    fixed_batch: FixedBatch | None = None


@dataclass(frozen=True)
class Loaded:
    """What a format's ``load`` built, in the worker.

    Attributes:
        module: the model, ``module(*inputs)``.
        task: what the record says it does (``None``: ``user model (<format>)``).
        parameters: its parameter count (``None``: counted from ``module.parameters()``).
        input: its inputs (``None``: the inputs planned when the file was resolved).
    """

    module: nn.Module
    task: str | None = None
    parameters: int | None = None
    input: InputSpec | None = None


class FormatLoader:
    """How one format is resolved (in the parent) and loaded (in each worker).

    Subclass it and decorate the subclass with :func:`register_loader`, which sets
    :attr:`name`. The default :meth:`resolve` fits a file that records no inputs.
    """

    #: The format's name (:data:`~devicebench.workloads.userfile.FORMATS`), set on registering.
    name: str = ""

    def resolve(self, path: Path, spec: UserModelSpec) -> Resolved:
        """Check that the file can be loaded safely and plan its inputs; unpickles nothing.

        The default takes the inputs from the user (``--input-shape`` / ``--input``) and
        hashes ``path`` itself.

        Raises:
            ModelFileError: the file is unsafe or cannot be read.
            InputShapeError: inputs that do not fit, or none given where the file records none.
        """
        return Resolved(plans_from_user(spec, self.name), path)

    def load(self, path: Path, spec: UserModelSpec, *, device: str, threads: int | None) -> Loaded:
        """Build the model from a resolved ``spec`` (``path`` is its file or folder).

        Args:
            path: the file or folder.
            spec: the spec :meth:`resolve` filled in.
            device: where it will run.
            threads: intra-op threads, for runtimes that take them.

        Raises:
            DeviceUnavailableError: the format cannot run on ``device`` here.
            ModelFileError: the file cannot be loaded.
        """
        raise NotImplementedError(f"format {self.name!r} has no load()")


_LOADERS: dict[str, FormatLoader] = {}
_L = TypeVar("_L", bound=type[FormatLoader])


def register_loader(name: str) -> Callable[[_L], _L]:
    """Register a :class:`FormatLoader` subclass as the loader of format ``name``.

    Example:
        >>> @register_loader("openvino")
        ... class OpenVino(FormatLoader):
        ...     def load(self, path, spec, *, device, threads):
        ...         return Loaded(OvModule(path, device=device))

    Raises:
        ValueError: ``name`` is registered already.
    """

    def decorator(cls: _L) -> _L:
        if name in _LOADERS:
            raise ValueError(f"model format {name!r} is registered twice")
        cls.name = name
        _LOADERS[name] = cls()
        return cls

    return decorator


def get_loader(name: str) -> FormatLoader:
    """The loader registered for format ``name``.

    Raises:
        ModelFileError: no format of that name.
    """
    loader = _LOADERS.get(name)
    if loader is None:
        raise ModelFileError(f"unknown model format {name!r} (known: {', '.join(_LOADERS)})")
    return loader


def registered_formats() -> tuple[str, ...]:
    """The registered format names, in the order they were registered."""
    return tuple(_LOADERS)
