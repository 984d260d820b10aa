"""Progress of a measurement as it goes, for a display in another process.

The timing loop (:mod:`.timing`) calls :func:`report` between two timed calls, never inside
one, and at most once a second (:class:`Reporter` drops anything sooner), so that a
progress display costs the measurement one clock comparison per sample. Where the report
goes is set once per process with :func:`install`: the worker launcher installs a writer to
a pipe its parent reads (:mod:`devicebench.launchers.worker`); with none installed (tests,
the in-process API) a report goes nowhere.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Progress", "Reporter", "install", "installed", "report", "pipe_writer", "MIN_INTERVAL_S"]

#: At most one report per this many seconds.
MIN_INTERVAL_S = 1.0


@dataclass(frozen=True)
class Progress:
    """Where one configuration's measurement is.

    Attributes:
        phase: ``warmup``, ``measure`` (compute) or ``e2e`` (end to end).
        samples: timed calls so far in this phase.
        elapsed_s: seconds since this phase started.
        rel_ci: half-width of the median's 95% interval over the median, when known.
        max_time_s: the phase's time cap (for an estimate of what is left).
    """

    phase: str
    samples: int
    elapsed_s: float
    rel_ci: float | None = None
    max_time_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Progress:
        rel = data.get("rel_ci")
        cap = data.get("max_time_s")
        return cls(phase=str(data.get("phase", "")), samples=int(data.get("samples", 0)),
                   elapsed_s=float(data.get("elapsed_s", 0.0)),
                   rel_ci=None if rel is None else float(rel), max_time_s=None if cap is None else float(cap))


class Reporter:
    """Sends :class:`Progress` to ``send`` at most once per ``min_interval_s``.

    ``due()`` is the cheap check the loop makes after each sample; only when it is true does
    the loop build a report (which may sort the samples for the interval).
    """

    def __init__(self, send: Callable[[Progress], None], *, min_interval_s: float = MIN_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._send = send
        self._min = min_interval_s
        self._clock = clock
        self._next = clock() + min_interval_s
        self.sent = 0

    def due(self) -> bool:
        return self._clock() >= self._next

    def send(self, progress: Progress) -> None:
        now = self._clock()
        if now < self._next:
            return
        self._next = now + self._min
        self.sent += 1
        try:
            self._send(progress)
        except OSError:  # a reader that went away never stops a measurement
            pass


_current: Reporter | None = None


def install(reporter: Reporter | None) -> Reporter | None:
    """Make ``reporter`` this process's (``None``: report nowhere); returns the previous one."""
    global _current
    previous, _current = _current, reporter
    return previous


def installed() -> Reporter | None:
    """This process's reporter, if any."""
    return _current


def report(progress_of: Callable[[], Progress]) -> None:
    """Send the progress ``progress_of()`` builds, if a reporter is installed and one is due."""
    reporter = _current
    if reporter is not None and reporter.due():
        reporter.send(progress_of())


def pipe_writer(fd: int) -> Callable[[Progress], None]:
    """A sender that writes each report as one JSON line to ``fd`` without ever blocking (a
    report that does not fit the pipe is dropped)."""
    os.set_blocking(fd, False)

    def send(progress: Progress) -> None:
        try:
            os.write(fd, (json.dumps(progress.to_dict()) + "\n").encode())
        except BlockingIOError:
            pass

    return send
