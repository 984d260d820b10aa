"""A user model's input tensors: read safely from ``.npy`` / ``.pt`` files, or made from
the planned inputs (:class:`PlannedInput`, the model's
:class:`~devicebench.workloads.registry.InputSpec`) in each worker."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from devicebench.errors import ModelFileError
from devicebench.workloads.userfile.detect import check_readable, first_line
from devicebench.workloads.userfile.spec import INPUT_DTYPES, InputPlan

__all__ = ["PlannedInput", "load_tensor_file"]


def load_tensor_file(path: str | Path) -> tuple[torch.Tensor, ...]:
    """Tensors from a ``.npy`` file (``allow_pickle=False``) or a ``.pt`` file
    (``weights_only=True``: a tensor, or a tuple/list/dict of tensors).

    Raises:
        ModelFileError: missing, a folder, unreadable, or not tensors.
    """
    p = Path(path).expanduser()
    check_readable(p, "input tensor file")
    with p.open("rb") as fh:
        head = fh.read(8)
    if head[:6] == b"\x93NUMPY":
        import numpy as np

        try:
            array = np.load(p, allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - truncated, object arrays...
            raise ModelFileError(f"cannot read input {p} safely: {first_line(exc)}") from None
        return (torch.from_numpy(np.ascontiguousarray(array)),)
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle/zip errors of many kinds
        raise ModelFileError(f"cannot read input {p} as tensors (.npy or .pt, loaded safely): {first_line(exc)}") from None
    if isinstance(obj, torch.Tensor):
        return (obj,)
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, (list, tuple)) and obj and all(isinstance(t, torch.Tensor) for t in obj):
        return tuple(obj)
    raise ModelFileError(f"{p} holds {type(obj).__name__}, not a tensor or a tuple of tensors")


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

