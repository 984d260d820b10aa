"""Opening an NVIDIA GPU through NVML (the optional nvidia-ml-py package), for energy counters,
clocks and temperature."""

from __future__ import annotations

from typing import Any

__all__ = ["open_gpu"]


def open_gpu(index: int, nvml: Any | None = None) -> tuple[Any, Any]:
    """Initialise NVML and return ``(nvml module, handle of GPU index)``.

    Args:
        index: the GPU's NVML index.
        nvml: a module with pynvml's interface (tests pass a fake); ``pynvml`` by default.

    Raises:
        RuntimeError: nvidia-ml-py is not installed, or NVML cannot open that GPU.
    """
    if nvml is None:
        try:
            import pynvml as nvml  # from nvidia-ml-py, optional
        except ImportError:
            raise RuntimeError("nvidia-ml-py is not installed") from None
    try:
        nvml.nvmlInit()
        return nvml, nvml.nvmlDeviceGetHandleByIndex(index)
    except Exception as exc:  # noqa: BLE001 - NVML raises its own exception hierarchy
        raise RuntimeError(f"NVML cannot open GPU {index}: {exc}") from None
