"""An ONNX Runtime session behind the same ``module(*tensors) -> tensor`` interface as a
torch model, so that the timing code runs it unchanged.

Used for user ONNX files and as a CPU/GPU candidate when tuning. The device is chosen when
the session is built (``.to()`` is a no-op); inputs are torch tensors, outputs come back as
torch tensors on the host.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from devicebench.errors import UserError

__all__ = ["OrtModule", "ort_available", "ort_providers"]


def ort_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def ort_providers() -> list[str]:
    """Execution providers this onnxruntime build offers (empty when not installed)."""
    if not ort_available():
        return []
    import onnxruntime as ort

    return list(ort.get_available_providers())


class OrtModule(nn.Module):
    """Run an ONNX model with onnxruntime.

    Args:
        model: path to a ``.onnx`` file, or the serialized model bytes.
        device: ``cpu`` or ``cuda[:N]`` (needs onnxruntime-gpu's CUDA provider).
        threads: intra-op threads (``None``: onnxruntime's default).
        optimization: ``all`` (full graph optimisation), ``extended``, ``basic`` or ``none``.

    Raises:
        UserError: onnxruntime missing, provider unavailable, or the model cannot be loaded.
    """

    def __init__(
        self,
        model: str | Path | bytes,
        *,
        device: str = "cpu",
        threads: int | None = None,
        optimization: str = "all",
    ) -> None:
        super().__init__()
        try:
            import onnxruntime as ort
        except ImportError:
            raise UserError("running ONNX models needs onnxruntime: pip install 'devicebench[onnx]'") from None
        levels = {
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        }
        options = ort.SessionOptions()
        options.graph_optimization_level = levels[optimization]
        options.log_severity_level = 3
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL  # the default, stated: one op at a time
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        kind, _, index = device.partition(":")
        if kind == "cpu":
            providers: list[Any] = ["CPUExecutionProvider"]
        elif kind == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise UserError(
                    "this onnxruntime has no CUDA provider (install onnxruntime-gpu); "
                    "ONNX models run on the CPU only here"
                )
            providers = [("CUDAExecutionProvider", {"device_id": int(index or 0)})]
        else:
            raise UserError(f"ONNX Runtime cannot run on {device!r} here: use cpu or cuda")
        source = model if isinstance(model, bytes) else str(model)
        try:
            self.session = ort.InferenceSession(source, sess_options=options, providers=providers)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"onnxruntime cannot load the model: {first}") from None
        self.device_str = device
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def to(self, *args: Any, **kwargs: Any) -> OrtModule:  # the session's device is fixed
        return self

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if len(inputs) != len(self.input_names):
            raise UserError(
                f"the ONNX model takes {len(self.input_names)} inputs ({', '.join(self.input_names)}), "
                f"got {len(inputs)}"
            )
        feed = {name: t.detach().cpu().numpy() for name, t in zip(self.input_names, inputs)}
        outputs = [torch.from_numpy(o) for o in self.session.run(None, feed)]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)
