"""Does a faster configuration still give the same answer? Compare it with CPU fp32 eager.

Every tuning candidate runs the same model (same seed, same weights) on the same inputs as
the reference, CPU fp32 eager PyTorch. Its output is compared with the reference's:

* ``max_abs_err``: the largest absolute difference of any output element;
* ``max_rel_err``: that difference over the largest absolute reference value (a relative
  error per element explodes near zero, so the scale is the output's own);
* ``min_cosine``: the smallest cosine similarity between a sample's candidate and reference
  outputs (flattened; for an embedding model, the sample's whole sequence of vectors);
* ``top1_agreement`` (classifiers): the share of samples whose arg-max class is the same,
  counted over *decisive* samples only: a sample whose reference top-1 and top-2 logits are
  closer than the precision's error tolerance is a tie that no precision can be asked to
  keep, so it is counted apart (``top1_ties``).

A candidate passes when every figure is within the tolerance of its numeric class
(:data:`TOLERANCES`, documented in docs/tuning.md); one that fails cannot win.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["Tolerance", "TOLERANCES", "ParityResult", "compare_outputs", "first_tensor"]


@dataclass(frozen=True)
class Tolerance:
    """The most a numeric class may differ from the fp32 reference.

    Attributes:
        max_rel_err: max |candidate - reference| / max |reference|.
        min_cosine: the lowest per-sample cosine similarity allowed.
        min_top1: the lowest top-1 agreement over decisive samples (classifiers).
    """

    max_rel_err: float
    min_cosine: float
    min_top1: float = 1.0


#: Tolerances per numeric class. fp32 variants (threads, layout, compile, ONNX Runtime,
#: CUDA graphs) only reorder fp32 sums: 1e-3 of the output's scale is generous for that and
#: still catches any real bug. Reduced precisions get what their mantissa allows over a
#: deep network: TF32 and fp16 (10-bit mantissa) a few 1e-3 per layer, bf16 (7-bit) and
#: int8 (per-tensor scales) about 1e-2 per layer.
TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(max_rel_err=1e-3, min_cosine=0.99999),
    "tf32": Tolerance(max_rel_err=2e-2, min_cosine=0.9995),
    "fp16": Tolerance(max_rel_err=2e-2, min_cosine=0.9995),
    "bf16": Tolerance(max_rel_err=8e-2, min_cosine=0.995),
    "int8": Tolerance(max_rel_err=1.5e-1, min_cosine=0.99),
}


@dataclass
class ParityResult:
    """How one candidate's output compares with the reference's."""

    numeric_class: str
    passed: bool
    max_abs_err: float
    max_rel_err: float
    min_cosine: float
    top1_agreement: float | None = None
    top1_ties: int = 0
    samples: int = 0
    reasons: list[str] = field(default_factory=list)
    tolerance: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        bits = [f"rel {self.max_rel_err:.1e}", f"cos {self.min_cosine:.6f}"]
        if self.top1_agreement is not None:
            bits.append(f"top-1 {self.top1_agreement:.0%}")
        return ", ".join(bits)


def first_tensor(output: Any) -> torch.Tensor:
    """The main tensor of a model output (the first of a tuple or dict).

    Raises:
        TypeError: no tensor in the output.
    """
    import torch

    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (list, tuple)) and output:
        return first_tensor(output[0])
    if isinstance(output, dict) and output:
        return first_tensor(next(iter(output.values())))
    raise TypeError(f"model output holds no tensor ({type(output).__name__})")


def compare_outputs(candidate: Any, reference: Any, *, task: str, numeric: str) -> ParityResult:
    """Compare a candidate's output with the reference's under ``numeric``'s tolerance.

    Args:
        candidate: the candidate's output (a tensor or a tuple/dict holding one first).
        reference: CPU fp32 eager's output on the same inputs.
        task: the model's task; ``*-classification`` turns on the top-1 check.
        numeric: the candidate's numeric class (a key of :data:`TOLERANCES`).

    Raises:
        KeyError: unknown numeric class.
    """
    import torch

    tol = TOLERANCES[numeric]
    result = ParityResult(numeric, False, math.inf, math.inf, -1.0, tolerance=asdict(tol))
    try:
        cand = first_tensor(candidate).detach().to("cpu", torch.float64)
        ref = first_tensor(reference).detach().to("cpu", torch.float64)
    except TypeError as exc:
        result.reasons.append(str(exc))
        return result
    if cand.shape != ref.shape:
        result.reasons.append(f"output shape {list(cand.shape)} differs from the reference's {list(ref.shape)}")
        return result
    result.samples = int(ref.shape[0]) if ref.dim() else 1
    if not torch.isfinite(cand).all():
        result.reasons.append("output holds NaN or infinite values")
        return result
    diff = (cand - ref).abs()
    scale = float(ref.abs().max()) or 1.0
    result.max_abs_err = float(diff.max()) if diff.numel() else 0.0
    result.max_rel_err = result.max_abs_err / scale
    flat_c = cand.reshape(result.samples, -1)
    flat_r = ref.reshape(result.samples, -1)
    cos = torch.nn.functional.cosine_similarity(flat_c, flat_r, dim=1, eps=1e-30)
    result.min_cosine = float(cos.min())
    if result.max_rel_err > tol.max_rel_err:
        result.reasons.append(f"relative error {result.max_rel_err:.2e} > {tol.max_rel_err:.0e}")
    if result.min_cosine < tol.min_cosine:
        result.reasons.append(f"cosine similarity {result.min_cosine:.6f} < {tol.min_cosine}")
    if task.endswith("classification") and ref.dim() == 2 and ref.shape[1] > 1:
        top2 = ref.topk(2, dim=1).values
        decisive = (top2[:, 0] - top2[:, 1]) > tol.max_rel_err * scale
        result.top1_ties = int((~decisive).sum())
        agree = cand.argmax(dim=1) == ref.argmax(dim=1)
        if decisive.any():
            result.top1_agreement = float(agree[decisive].double().mean())
            if result.top1_agreement < tol.min_top1:
                result.reasons.append(f"top-1 class agrees on {result.top1_agreement:.0%} of samples (< {tol.min_top1:.0%})")
    result.passed = not result.reasons
    return result
