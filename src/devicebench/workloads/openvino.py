"""An OpenVINO CPU inference request behind the ``module(*tensors) -> tensor`` interface of a
torch model, so that the timing code runs it unchanged (as :class:`.onnxrt.OrtModule` does
for ONNX Runtime).

OpenVINO reads the ONNX file devicebench exports for ONNX Runtime. Two of its defaults would
change what is measured without saying so, and are set explicitly here: on a CPU with native
bf16 (AVX512-BF16, AMX) its CPU plugin computes in **bf16 unless told otherwise**, so the
precision is always given (``f32`` for the fp32 candidate, ``bf16`` for its own candidate with
its own parity class); and it compiles for throughput streams unless given the latency hint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from devicebench.errors import UserError

__all__ = ["OvModule", "ov_available", "ov_cpu_capabilities", "ov_version"]


def ov_available() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def ov_version() -> str | None:
    if not ov_available():
        return None
    import openvino

    return str(getattr(openvino, "__version__", "?"))


def ov_cpu_capabilities() -> list[str]:
    """What OpenVINO's CPU plugin says this CPU can compute in (``FP32``, ``BF16``, ``INT8``...)."""
    if not ov_available():
        return []
    import openvino as ov

    try:
        return [str(c) for c in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")]
    except Exception:  # noqa: BLE001 - an odd CPU or plugin: no capabilities known
        return []


class OvModule(nn.Module):
    """Run an ONNX model with OpenVINO on the CPU, compiled for these input shapes.

    Args:
        model: path to a ``.onnx`` file.
        shapes: each input's full shape (the exported batch dimension is dynamic; a static
            shape lets OpenVINO plan its kernels once).
        precision: ``f32`` or ``bf16`` (OpenVINO's ``INFERENCE_PRECISION_HINT``). A model
            holding int8 quantize/dequantize pairs runs its quantised parts in int8 either way.
        threads: ``INFERENCE_NUM_THREADS`` (``None``: OpenVINO's default, every core).

    Raises:
        UserError: openvino missing, or the model cannot be read or compiled.
    """

    def __init__(self, model: str | Path, *, shapes: list[list[int]], precision: str = "f32",
                 threads: int | None = None) -> None:
        super().__init__()
        try:
            import openvino as ov
        except ImportError:
            raise UserError("the OpenVINO candidates need openvino: pip install 'devicebench[openvino]'") from None
        core = ov.Core()
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": precision}
        if threads is not None:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        try:
            ov_model = core.read_model(str(model))
            if len(shapes) != len(ov_model.inputs):
                raise UserError(f"the model takes {len(ov_model.inputs)} inputs, {len(shapes)} shapes given")
            ov_model.reshape({port: ov.PartialShape(shape) for port, shape in zip(ov_model.inputs, shapes)})
            self.compiled = core.compile_model(ov_model, "CPU", config)
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 - OpenVINO raises its own untyped errors
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"OpenVINO cannot compile the model: {first}") from None
        self.request = self.compiled.create_infer_request()
        hint = self.compiled.get_property("INFERENCE_PRECISION_HINT")
        self.precision = str(hint.get_type_name() if hasattr(hint, "get_type_name") else hint)
        if self.precision != precision:
            raise UserError(f"OpenVINO compiled in {self.precision}, not the {precision} asked for")
        self.n_inputs = len(shapes)

    def to(self, *args: Any, **kwargs: Any) -> OvModule:  # compiled for the CPU
        return self

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if len(inputs) != self.n_inputs:
            raise UserError(f"the OpenVINO model takes {self.n_inputs} inputs, got {len(inputs)}")
        # share_outputs=False (the default): each call returns fresh arrays, as ONNX Runtime does.
        result = self.request.infer({i: t.detach().cpu().numpy() for i, t in enumerate(inputs)})
        outputs = [torch.from_numpy(result[port]) for port in self.compiled.outputs]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)
