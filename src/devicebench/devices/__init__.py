"""Stage 1: what hardware exists, what it is, and how to time work on it."""

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
