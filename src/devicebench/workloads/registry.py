"""A decorator registry of models, each with the inputs it takes, and a factory.

Every model has a ``-tiny`` variant of the same architecture, small enough for tests to run
in seconds. Models are built from their architecture with random weights unless the user
gives a local weights file; every result says which.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from devicebench.workloads.files import file_sha256
from devicebench.errors import UnknownModelError, UserError

if TYPE_CHECKING:
    # torch is imported where a model is built or an input made: the registry itself (names,
    # inputs, descriptions) is read by `devicebench models` without it.
    import torch
    from torch import nn

    Example = tuple[torch.Tensor, ...]

__all__ = [
    "InputSpec",
    "ImageInput",
    "TokenInput",
    "ModelEntry",
    "Workload",
    "register_model",
    "create_model",
    "get_model_entry",
    "list_models",
    "load_state_dict_file",
]

class InputSpec(Protocol):
    """Describes and makes the example inputs of a model (on the CPU)."""

    def example(self, batch_size: int, seed: int = 0) -> Example: ...

    def shapes(self, batch_size: int) -> list[list[int]]: ...

    @property
    def source(self) -> str: ...


@dataclass(frozen=True)
class ImageInput:
    """A batch of random images, ``N x C x H x W`` float32 in N(0, 1) (already normalised)."""

    channels: int = 3
    height: int = 224
    width: int = 224

    def example(self, batch_size: int, seed: int = 0) -> Example:
        import torch

        gen = torch.Generator().manual_seed(seed)
        shape = (batch_size, self.channels, self.height, self.width)
        return (torch.randn(shape, generator=gen),)

    def shapes(self, batch_size: int) -> list[list[int]]:
        return [[batch_size, self.channels, self.height, self.width]]

    @property
    def source(self) -> str:
        return "random normal images"


@dataclass(frozen=True)
class TokenInput:
    """A batch of real English sentences, tokenized and padded to ``seq_len``.

    Gives ``(input_ids, attention_mask, token_type_ids)``, int64. See
    :mod:`devicebench.workloads.text` for which tokenizer is used.
    """

    seq_len: int = 128
    vocab_size: int = 30522

    def example(self, batch_size: int, seed: int = 0) -> Example:
        from devicebench.workloads.text import tokenize_batch

        return tokenize_batch(batch_size, self.seq_len, self.vocab_size, seed=seed)

    def shapes(self, batch_size: int) -> list[list[int]]:
        return [[batch_size, self.seq_len]] * 3

    @property
    def source(self) -> str:
        from devicebench.workloads.text import tokenizer_name

        return f"English sentences, {tokenizer_name()}"


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: how to build it and what it takes."""

    name: str
    builder: Callable[[], nn.Module]
    input: InputSpec
    task: str
    description: str
    tiny: bool = False
    default_batch_sizes: tuple[int, ...] = (1, 8, 32)
    #: Modules the builder imports (``torchvision.models``, ``transformers``): a run's fork
    #: server imports them once instead of in every worker.
    preload: tuple[str, ...] = ()


@dataclass
class Workload:
    """A built model, ready to measure: the module, its inputs, and where its weights came from."""

    name: str
    module: nn.Module
    input: InputSpec
    task: str
    weights: str
    parameters: int = field(default=0)
    #: For a user model file: path, format, sha256, inputs (see docs/own-models.md).
    model_file: dict[str, Any] | None = None

    def example(self, batch_size: int, seed: int = 0) -> Example:
        return self.input.example(batch_size, seed)


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str,
    *,
    input: InputSpec,
    task: str,
    description: str,
    tiny: bool = False,
    default_batch_sizes: tuple[int, ...] = (1, 8, 32),
    preload: tuple[str, ...] = (),
) -> Callable[[Callable[[], nn.Module]], Callable[[], nn.Module]]:
    """Register a model builder under ``name``.

    Example:
        >>> @register_model("mlp-tiny", input=ImageInput(1, 8, 8), task="x", description="...")
        ... def mlp_tiny() -> nn.Module: ...
    """

    def decorator(fn: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelEntry(
            name=name,
            builder=fn,
            input=input,
            task=task,
            description=description,
            tiny=tiny,
            default_batch_sizes=default_batch_sizes,
            preload=preload,
        )
        return fn

    return decorator


def list_models(include_tiny: bool = True) -> list[ModelEntry]:
    """The registered models, sorted by name."""
    return sorted(
        (e for e in _REGISTRY.values() if include_tiny or not e.tiny), key=lambda e: e.name
    )


def get_model_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``.

    Raises:
        UnknownModelError: no model of that name.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(name, list(_REGISTRY)) from None



def load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    """Load a state dict safely: safetensors, or ``torch.load(weights_only=True)``.

    Never unpickles arbitrary objects: a file that needs that is refused.

    Raises:
        UserError: missing, unreadable, or not a state dict.
    """
    import torch

    if not path.is_file():
        raise UserError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise UserError(
                "reading .safetensors needs the safetensors package: pip install safetensors"
            ) from None
        try:
            return dict(load_file(str(path)))
        except Exception as exc:  # noqa: BLE001 - safetensors raises several types
            raise UserError(f"cannot read weights {path}: {exc}") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle/zip errors of many kinds
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot read weights {path} safely: {first}") from None
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"{path} is not a state dict (a mapping of names to tensors)")
    return obj


def create_model(name: str, *, weights: str | Path | None = None) -> Workload:
    """Build a registered model, with random weights or the given local weights file.

    Args:
        name: a registered model name (see :func:`list_models`).
        weights: optional path to a state dict (``.pt``/``.pth`` loaded with
            ``weights_only=True``, or ``.safetensors``).

    Raises:
        UnknownModelError: the name is not registered.
        UserError: the weights file cannot be read or does not fit the architecture.
    """
    entry = get_model_entry(name)
    from devicebench.workloads.nets import parallel_normal_draws

    with parallel_normal_draws():  # random normal weights drawn on every usable core
        module = entry.builder()
    described = "random"
    if weights is not None:
        path = Path(weights)
        state = load_state_dict_file(path)
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            lines = str(exc).strip().splitlines()
            raise UserError(
                f"weights {path.name} do not fit {name}: {lines[1].strip() if len(lines) > 1 else lines[0]}"
            ) from None
        described = f"file:{path.name} sha256:{file_sha256(path)[:12]}"
    module.eval()
    return Workload(
        name=name,
        module=module,
        input=entry.input,
        task=entry.task,
        weights=described,
        parameters=sum(p.numel() for p in module.parameters()),
    )
