"""The exceptions devicebench raises, each with a message a user can act on.

The CLI turns a :class:`UserError` into one line on stderr and exit code 2, and a
:class:`MeasurementError` into exit code 1. Anything else is a bug and shows a traceback
only with ``--debug``.
"""

from __future__ import annotations

__all__ = [
    "DevicebenchError",
    "UserError",
    "UnknownModelError",
    "DeviceUnavailableError",
    "ConfigError",
    "StoreError",
    "StoreVersionError",
    "RunNotFoundError",
    "MeasurementError",
]


class DevicebenchError(Exception):
    """Base class of every error devicebench raises on purpose."""

    exit_code: int = 1


class UserError(DevicebenchError):
    """Bad input: the user can fix it (a name, a path, an option)."""

    exit_code = 2


class UnknownModelError(UserError):
    """A model name that the registry does not know."""

    def __init__(self, name: str, known: list[str]) -> None:
        close = [k for k in known if name.lower() in k or k in name.lower()]
        hint = f" Did you mean: {', '.join(close[:5])}?" if close else ""
        super().__init__(
            f"unknown model {name!r}.{hint} Known models: {', '.join(sorted(known))} "
            "(see `devicebench models`)."
        )
        self.name = name


class DeviceUnavailableError(UserError):
    """A device that this machine does not have, or that torch cannot use."""


class ConfigError(UserError):
    """An option value that cannot work (a negative batch size, an unknown precision...)."""


class StoreError(UserError):
    """The results database cannot be opened or read (corrupt, not SQLite, unreadable)."""


class StoreVersionError(StoreError):
    """The database was written by a newer devicebench: it is left untouched."""


class RunNotFoundError(UserError):
    """No run with that id (or prefix) in the store."""


class MeasurementError(DevicebenchError):
    """A measurement failed in a way that leaves no result to report."""

    exit_code = 1
