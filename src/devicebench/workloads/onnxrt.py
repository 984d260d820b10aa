"""An ONNX Runtime session behind the same ``module(*tensors) -> tensor`` interface as a
torch model, so that the timing code runs it unchanged.

Used for user ONNX files and as a CPU/GPU candidate when tuning. The device is chosen when
the session is built (``.to()`` is a no-op).

* On the CPU, inputs are handed over as numpy views and outputs come back as host tensors.
* On CUDA, the session runs with **I/O binding** on device buffers: the inputs' device
  memory is bound as it is, and the outputs are written into device tensors allocated once
  per input shape. Nothing crosses the bus inside the call, so its compute-only time is the
  model's, as for a torch model on the GPU; end-to-end timing adds the copies itself. The
  session also runs on torch's current stream of that device (``user_compute_stream``), so
  CUDA events on that stream see its work in order. ONNX Runtime's memory comes from its own
  arena, which torch's allocator figures cannot see: the record's
  ``memory.device_driver_used_mb`` (the driver's view) does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from devicebench.errors import UserError

__all__ = ["OrtModule", "ort_available", "ort_providers", "torch_dtype", "numpy_dtype"]


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
        io_binding: bind inputs and outputs to device buffers (default: on CUDA only). The
            outputs returned are then buffers reused by the next call of the same input
            shapes (as a CUDA graph's are): copy them to keep them.

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
        io_binding: bool | None = None,
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
            cuda_options: dict[str, Any] = {"device_id": int(index or 0)}
            if torch.cuda.is_available():
                # torch's stream of that device: inputs written there are ready when ORT reads
                # them, and events recorded there bracket ORT's kernels.
                cuda_options["user_compute_stream"] = str(torch.cuda.current_stream(f"cuda:{int(index or 0)}").cuda_stream)
            providers = [("CUDAExecutionProvider", cuda_options)]
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
        self.io_binding = (kind == "cuda") if io_binding is None else bool(io_binding)
        self._bind_device = ("cuda", int(index or 0)) if kind == "cuda" else ("cpu", 0)
        self._torch_device = torch.device(f"cuda:{int(index or 0)}" if kind == "cuda" else "cpu")
        #: Output buffers per input signature (shapes and dtypes), allocated at the first call.
        self._outputs: dict[tuple[Any, ...], list[torch.Tensor]] = {}

    def to(self, *args: Any, **kwargs: Any) -> OrtModule:  # the session's device is fixed
        return self

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if len(inputs) != len(self.input_names):
            raise UserError(
                f"the ONNX model takes {len(self.input_names)} inputs ({', '.join(self.input_names)}), "
                f"got {len(inputs)}"
            )
        if self.io_binding:
            outputs = self._run_bound(inputs)
        else:
            feed = {name: t.detach().cpu().numpy() for name, t in zip(self.input_names, inputs)}
            outputs = [torch.from_numpy(o) for o in self.session.run(None, feed)]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def _run_bound(self, inputs: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
        """One run with inputs and outputs bound to device memory (no copy in the call)."""
        kind, index = self._bind_device
        binding = self.session.io_binding()
        # Kept referenced until the run returns: ORT reads these addresses.
        held = [t.detach().to(self._torch_device).contiguous() for t in inputs]
        for name, t in zip(self.input_names, held):
            binding.bind_input(name, kind, index, numpy_dtype(t.dtype), tuple(t.shape), t.data_ptr())
        key = tuple((tuple(t.shape), t.dtype) for t in held)
        outs = self._outputs.get(key)
        if outs is None:
            # First call with these shapes: let ORT allocate on the device to learn the output
            # shapes and types, then keep buffers of our own for every later call.
            for name in self.output_names:
                binding.bind_output(name, kind, index)
            self.session.run_with_iobinding(binding)
            outs = []
            for value in binding.get_outputs():
                buffer = torch.empty(tuple(value.shape()), dtype=torch_dtype(value.data_type()), device=self._torch_device)
                buffer.copy_(torch.from_numpy(value.numpy()))
                outs.append(buffer)
            self._outputs[key] = outs
            return outs
        for name, out in zip(self.output_names, outs):
            binding.bind_output(name, kind, index, numpy_dtype(out.dtype), tuple(out.shape), out.data_ptr())
        self.session.run_with_iobinding(binding)
        return outs


#: ONNX Runtime's element type names and the torch dtypes they are.
_ORT_TYPES = {
    "tensor(float)": torch.float32, "tensor(float16)": torch.float16, "tensor(double)": torch.float64,
    "tensor(int64)": torch.int64, "tensor(int32)": torch.int32, "tensor(int16)": torch.int16,
    "tensor(int8)": torch.int8, "tensor(uint8)": torch.uint8, "tensor(bool)": torch.bool,
}


def torch_dtype(ort_type: str) -> torch.dtype:
    """The torch dtype of an ONNX Runtime element type (``tensor(float)`` -> float32).

    Raises:
        UserError: a type devicebench cannot bind (bf16, strings...).
    """
    try:
        return _ORT_TYPES[ort_type]
    except KeyError:
        raise UserError(f"ONNX Runtime output type {ort_type} cannot be bound to a torch tensor") from None


def numpy_dtype(dtype: torch.dtype) -> Any:
    """The numpy type ONNX Runtime's binding calls take for a torch dtype.

    Raises:
        UserError: a dtype numpy has no type for (bf16).
    """
    if dtype not in _ORT_TYPES.values():
        raise UserError(f"ONNX Runtime cannot take {dtype} tensors by I/O binding")
    return torch.empty((), dtype=dtype).numpy().dtype.type
