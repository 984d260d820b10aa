"""Stage 1: what hardware exists, what it is, and how to time work on it.

The names below are imported on first use (PEP 562), so that ``import devicebench.devices``
and the commands that only read results (``history``, ``show``, ``report``) never import
torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devicebench.devices.discovery import DeviceSpec, available_devices, parse_devices
    from devicebench.devices.sysinfo import collect_environment
    from devicebench.devices.timers import make_timer, synchronize

__all__ = [
    "DeviceSpec",
    "available_devices",
    "parse_devices",
    "collect_environment",
    "make_timer",
    "synchronize",
]

_WHERE = {
    "DeviceSpec": "discovery",
    "available_devices": "discovery",
    "parse_devices": "discovery",
    "collect_environment": "sysinfo",
    "make_timer": "timers",
    "synchronize": "timers",
}


def __getattr__(name: str) -> object:
    if name in _WHERE:
        return getattr(importlib.import_module(f"devicebench.devices.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'devicebench.devices' has no attribute {name!r}")
