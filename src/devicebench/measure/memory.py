"""Peak memory: the process's resident set on the CPU, the allocator's peaks on a GPU."""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from typing import Any

from devicebench.devices.discovery import DeviceSpec

__all__ = ["MemoryStats", "rss_mb", "peak_rss_mb", "reset_device_peak", "read_memory"]


@dataclass
class MemoryStats:
    """Memory of one configuration, in MiB.

    Attributes:
        rss_peak_mb: the worker process's peak resident set (includes torch itself).
        rss_baseline_mb: resident set after imports, before the model was built; the model's
            share is roughly ``rss_peak_mb - rss_baseline_mb``.
        device_allocated_peak_mb: peak bytes held in tensors on the accelerator.
        device_reserved_peak_mb: peak bytes the caching allocator reserved from the driver.
        device_driver_used_mb: CUDA: memory in use on the whole device as the driver reports
            it at the end of the run (``cudaMemGetInfo``; every process and context counted).
            The only figure that sees memory torch's allocator does not manage: ONNX
            Runtime's own arena, the CUDA context, library workspaces.
    """

    rss_peak_mb: float | None = None
    rss_baseline_mb: float | None = None
    device_allocated_peak_mb: float | None = None
    device_reserved_peak_mb: float | None = None
    device_driver_used_mb: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def peak_rss_mb() -> float:
    """Peak resident set of this process so far."""
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # Linux reports KiB, macOS bytes.
        return peak / 2**20 if sys.platform == "darwin" else peak / 2**10
    except ImportError:  # Windows
        import psutil

        info = psutil.Process().memory_info()
        return getattr(info, "peak_wset", info.rss) / 2**20


def reset_device_peak(device: DeviceSpec) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device.torch_device)
    elif device.type == "xpu":
        torch.xpu.reset_peak_memory_stats(device.torch_device)


def read_memory(device: DeviceSpec, baseline_mb: float | None) -> MemoryStats:
    import torch

    stats = MemoryStats(rss_peak_mb=round(peak_rss_mb(), 1), rss_baseline_mb=baseline_mb)
    if device.type == "cuda":
        stats.device_allocated_peak_mb = round(torch.cuda.max_memory_allocated(device.torch_device) / 2**20, 1)
        stats.device_reserved_peak_mb = round(torch.cuda.max_memory_reserved(device.torch_device) / 2**20, 1)
        try:
            free, total = torch.cuda.mem_get_info(device.torch_device)
            stats.device_driver_used_mb = round((total - free) / 2**20, 1)
        except RuntimeError:
            pass
    elif device.type == "xpu":
        stats.device_allocated_peak_mb = round(torch.xpu.max_memory_allocated(device.torch_device) / 2**20, 1)
        stats.device_reserved_peak_mb = round(torch.xpu.max_memory_reserved(device.torch_device) / 2**20, 1)
    elif device.type == "mps":
        # MPS keeps no peak; the driver's current allocation after the run is the best there is.
        stats.device_allocated_peak_mb = round(torch.mps.current_allocated_memory() / 2**20, 1)
        stats.device_reserved_peak_mb = round(torch.mps.driver_allocated_memory() / 2**20, 1)
    return stats
