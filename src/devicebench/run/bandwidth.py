"""The memory-bandwidth probe of ``devicebench devices``: one worker per device, so that the
parent process never starts CUDA (:func:`devicebench.devices.bandwidth.measure_bandwidth`)."""

from __future__ import annotations

from collections.abc import Sequence

from devicebench.devices.bandwidth import BandwidthProbe, measure_bandwidth
from devicebench.devices.discovery import DeviceSpec
from devicebench.launchers.worker import run_in_worker

__all__ = ["probe_devices"]


def probe_devices(devices: Sequence[DeviceSpec], *, in_process: bool = False) -> list[BandwidthProbe]:
    """Each device's copy bandwidth: the CPU's here (this process already runs torch on it),
    each accelerator's in a fresh worker (the parent never starts CUDA); all here with
    ``in_process`` (tests)."""
    out = []
    for device in devices:
        if in_process or device.type == "cpu":
            out.append(measure_bandwidth(device))
            continue
        result = run_in_worker(measure_bandwidth, device)
        if result.ok and isinstance(result.value, BandwidthProbe):
            out.append(result.value)
        else:
            out.append(BandwidthProbe(device.torch_device, 0, 0.0, 0.0, error=result.error or "worker failed"))
    return out
