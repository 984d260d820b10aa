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
    "ModelFileError",
    "InputShapeError",
    "DatasetError",
    "ChecksumError",
    "Terminated",
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


class ModelFileError(UserError):
    """A model file or folder that is missing, unreadable, corrupt, of an unknown format, or
    that could only be loaded by running untrusted code (a pickle without ``--trust-pickle``)."""


class InputShapeError(UserError):
    """Inputs that do not fit the model: wrong count, shape or dtype (the message names the
    shape expected where the model file records it)."""


class DatasetError(UserError):
    """A dataset path that cannot be read or is not a layout devicebench knows."""


class ChecksumError(UserError):
    """A downloaded archive does not have the expected SHA-256 (it is not used)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM received: stop like Ctrl-C (finished results are kept), exit with 143.

    A subclass of :class:`KeyboardInterrupt` so that every ``except KeyboardInterrupt`` that
    cleans up after Ctrl-C (the runner marks the run ``interrupted``, the worker is stopped)
    also runs for SIGTERM.
    """

    exit_code = 143
