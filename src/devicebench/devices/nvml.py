"""Opening an NVIDIA GPU through NVML (the optional nvidia-ml-py package), for energy counters,
clocks and temperature: the card torch measures, found by its UUID or PCI bus id.

torch's ``cuda:N`` and NVML's index N are different numberings: torch counts only the
devices ``CUDA_VISIBLE_DEVICES`` leaves visible, in its order (``CUDA_DEVICE_ORDER`` may be
``FASTEST_FIRST``), while NVML counts every GPU in PCI order. Opening NVML's device N would
read the energy and clocks of another card whenever the two differ, so the card is matched
by what identifies it physically: torch's ``get_device_properties(N).uuid`` against NVML's
``nvmlDeviceGetUUID``, else the PCI domain, bus and device numbers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["GpuIdentity", "match_nvml_index", "normalise_uuid", "nvml_identity", "open_gpu", "torch_identity"]


@dataclass(frozen=True)
class GpuIdentity:
    """What identifies one physical GPU: its UUID and its PCI (domain, bus, device) numbers,
    ``None`` where unknown."""

    uuid: str | None = None
    pci: tuple[int, int, int] | None = None

    def describe(self) -> str:
        bits = []
        if self.uuid:
            bits.append(f"UUID {self.uuid}")
        if self.pci:
            domain, bus, device = self.pci
            bits.append(f"PCI {domain:04x}:{bus:02x}:{device:02x}")
        return ", ".join(bits) or "no UUID or PCI bus id"


def normalise_uuid(text: Any) -> str | None:
    """A UUID in one spelling: lower case, no ``GPU-`` prefix (NVML writes ``GPU-6b5d...``,
    torch ``6b5d...``); ``None`` for nothing."""
    if text is None:
        return None
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    value = str(text).strip().lower()
    for prefix in ("gpu-", "mig-"):
        value = value.removeprefix(prefix)
    return value or None


def torch_identity(index: int) -> GpuIdentity:
    """torch's view of ``cuda:index`` (call in a worker: it initialises CUDA)."""
    import torch

    props = torch.cuda.get_device_properties(index)
    pci = None
    if all(hasattr(props, a) for a in ("pci_domain_id", "pci_bus_id", "pci_device_id")):
        pci = (int(props.pci_domain_id), int(props.pci_bus_id), int(props.pci_device_id))
    return GpuIdentity(normalise_uuid(getattr(props, "uuid", None)), pci)


def nvml_identity(nvml: Any, handle: Any) -> GpuIdentity:
    """NVML's view of one device handle (fields NVML cannot read are ``None``)."""
    uuid = pci = None
    try:
        uuid = normalise_uuid(nvml.nvmlDeviceGetUUID(handle))
    except Exception:  # noqa: BLE001 - NVML raises its own hierarchy
        uuid = None
    try:
        info = nvml.nvmlDeviceGetPciInfo(handle)
        pci = (int(info.domain), int(info.bus), int(info.device))
    except Exception:  # noqa: BLE001
        pci = None
    return GpuIdentity(uuid, pci)


def match_nvml_index(wanted: GpuIdentity, devices: Sequence[GpuIdentity]) -> int | None:
    """The NVML index of the device that is ``wanted``, or ``None`` when none (or more than
    one) matches. The UUID decides when both sides know it; else the PCI bus id."""
    if wanted.uuid:
        hits = [i for i, d in enumerate(devices) if d.uuid == wanted.uuid]
        if len(hits) == 1:
            return hits[0]
        if hits:
            return None
    if wanted.pci:
        hits = [i for i, d in enumerate(devices) if d.pci == wanted.pci]
        if len(hits) == 1:
            return hits[0]
    return None


def open_gpu(index: int, nvml: Any | None = None, identity: GpuIdentity | None = None) -> tuple[Any, Any]:
    """Initialise NVML and return ``(nvml module, handle)`` of the card that is torch's ``cuda:index``.

    Args:
        index: torch's CUDA index (as in ``cuda:1``), not NVML's.
        nvml: a module with pynvml's interface (tests pass a fake); ``pynvml`` by default.
        identity: the card to find (default: :func:`torch_identity` of ``index``).

    Raises:
        RuntimeError: nvidia-ml-py is not installed, NVML cannot start, or no NVML device
            is that card (its UUID and PCI bus id match none).
    """
    if nvml is None:
        try:
            import pynvml as nvml  # from nvidia-ml-py, optional
        except ImportError:
            raise RuntimeError("nvidia-ml-py is not installed") from None
    try:
        wanted = identity if identity is not None else torch_identity(index)
    except Exception as exc:  # noqa: BLE001 - no CUDA here, or torch cannot describe the device
        raise RuntimeError(f"cannot identify cuda:{index} for NVML: {exc}") from None
    try:
        nvml.nvmlInit()
        handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(int(nvml.nvmlDeviceGetCount()))]
    except Exception as exc:  # noqa: BLE001 - NVML raises its own exception hierarchy
        raise RuntimeError(f"NVML cannot list the GPUs: {exc}") from None
    found = match_nvml_index(wanted, [nvml_identity(nvml, h) for h in handles])
    if found is None:
        with contextlib.suppress(Exception):
            nvml.nvmlShutdown()
        raise RuntimeError(f"no NVML device is torch's cuda:{index} ({wanted.describe()}): "
                           "its energy and clocks are not read")
    return nvml, handles[found]
