"""Which devices torch can run on here, and parsing of ``--device`` values.

Every accelerator check is guarded: on a machine without CUDA nothing here calls into CUDA
beyond ``torch.cuda.is_available()``. torch is imported on first use, not with this module:
``DeviceSpec`` and ``DeviceRef`` are read by commands that never need torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from devicebench.errors import DeviceUnavailableError

__all__ = ["DeviceSpec", "DeviceRef", "available_devices", "parse_devices", "device_kind_available", "device_counts"]

#: Device types devicebench knows how to time, in the order they are shown.
KNOWN_TYPES = ("cpu", "cuda", "mps", "xpu")


@dataclass(frozen=True)
class DeviceSpec:
    """One device to measure on: a torch device string plus its type.

    Attributes:
        type: ``cpu``, ``cuda`` (NVIDIA or AMD ROCm), ``mps`` or ``xpu``.
        index: device index for multi-device types, ``None`` for the CPU.
    """

    type: str
    index: int | None = None

    @property
    def torch_device(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    @property
    def is_accelerator(self) -> bool:
        return self.type != "cpu"

    def __str__(self) -> str:
        return self.torch_device

    @classmethod
    def parse(cls, text: str) -> DeviceSpec:
        text = text.strip().lower()
        kind, _, idx = text.partition(":")
        if kind == "gpu":
            kind = "cuda"
        if kind not in KNOWN_TYPES:
            raise DeviceUnavailableError(
                f"unknown device {text!r}: use one of cpu, cuda[:N], mps, xpu[:N] or all"
            )
        if idx:
            if not idx.isdigit():
                raise DeviceUnavailableError(f"bad device index in {text!r}: expected e.g. cuda:0")
            return cls(kind, int(idx))
        return cls(kind, None if kind == "cpu" else 0)


@dataclass
class DeviceRef:
    """The device a result was measured on, as records keep it: type, index and the name the
    hardware reported (``NVIDIA H100 80GB HBM3``, the CPU's model name)."""

    type: str
    index: int | None
    name: str

    @property
    def label(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def _xpu_available() -> bool:
    import torch

    xpu = getattr(torch, "xpu", None)
    return bool(xpu is not None and xpu.is_available())


def device_kind_available(kind: str) -> int:
    """How many devices of a type torch can use here (0 when none)."""
    if kind == "cpu":
        return 1
    import torch

    if kind == "cuda":
        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    if kind == "mps":
        return 1 if _mps_available() else 0
    if kind == "xpu":
        return torch.xpu.device_count() if _xpu_available() else 0
    return 0


def device_counts(_: object = None) -> dict[str, Any]:
    """How many devices of each known type torch can use here (what :func:`parse_devices`
    accepts as ``counts``, found once, e.g. in a worker so that the caller need not import torch)."""
    import torch

    return {"torch": str(torch.__version__), **{kind: device_kind_available(kind) for kind in KNOWN_TYPES}}


def available_devices(counts: dict[str, Any] | None = None) -> list[DeviceSpec]:
    """Every device torch can use on this machine: the CPU first, then each accelerator
    (from ``counts`` when given, see :func:`device_counts`)."""
    found = [DeviceSpec("cpu")]
    for kind in KNOWN_TYPES[1:]:
        count = device_kind_available(kind) if counts is None else int(counts.get(kind, 0))
        found.extend(DeviceSpec(kind, i) for i in range(count))
    return found


def parse_devices(text: str | list[str] | None, *, counts: dict[str, Any] | None = None) -> list[DeviceSpec]:
    """Turn ``"all"``, ``"cpu,cuda"`` or ``["cpu", "cuda:1"]`` into device specs.

    ``all`` (or nothing) means every device found (asked of torch here, or taken from
    ``counts``: :func:`device_counts` run elsewhere). An explicitly named device that this
    machine lacks is an error, so that a user never gets a CPU-only table by mistake.

    Raises:
        DeviceUnavailableError: a named device does not exist here.
    """
    if text is None:
        return available_devices(counts)
    items = text if isinstance(text, list) else text.split(",")
    items = [i.strip() for i in items if i.strip()]
    if not items or items == ["all"]:
        return available_devices(counts)
    specs: list[DeviceSpec] = []
    for item in items:
        if item.lower() == "all":
            specs.extend(available_devices(counts))
            continue
        spec = DeviceSpec.parse(item)
        count = device_kind_available(spec.type) if counts is None else int(counts.get(spec.type, 0))
        if count == 0:
            if counts is None:
                import torch

                version = str(torch.__version__)
            else:
                version = str(counts.get("torch", "?"))
            raise DeviceUnavailableError(
                f"device {spec.type!r} is not available on this machine "
                f"(torch {version} sees: "
                f"{', '.join(str(d) for d in available_devices(counts))}); "
                "run `devicebench devices` to see what is found"
            )
        if spec.index is not None and spec.index >= count:
            raise DeviceUnavailableError(
                f"device {spec} does not exist: this machine has {count} {spec.type} device(s)"
            )
        specs.append(spec)
    # keep order, drop duplicates
    seen: set[DeviceSpec] = set()
    return [s for s in specs if not (s in seen or seen.add(s))]
