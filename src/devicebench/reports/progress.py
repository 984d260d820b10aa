"""Progress of a run in words: one configuration's report, and the time the run has left.

Pure functions and a small estimator, shared by the command line's bar
(:mod:`devicebench.cli.progress`) and the notebook's text line (:func:`devicebench.compare`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["RunEstimate", "progress_text", "fmt_duration", "run_line"]


class RunEstimate:
    """How long the rest of a run will take, from the configurations already measured.

    Before the first configuration ends there is nothing to go on but the timing policy's
    caps, so no estimate is given; after that, each configuration left is expected to take
    the mean of those measured (a configuration in flight counts what it has already spent).
    """

    def __init__(self, planned: int, clock: Any = None) -> None:
        import time

        self.planned = planned
        self._clock = clock or time.monotonic
        self._durations: list[float] = []
        self._started: float | None = None

    def start(self) -> None:
        self._started = self._clock()

    def finish(self) -> None:
        if self._started is not None:
            self._durations.append(self._clock() - self._started)
            self._started = None

    def remaining_s(self) -> float | None:
        if not self._durations:
            return None
        mean = sum(self._durations) / len(self._durations)
        left = self.planned - len(self._durations)
        spent = min(self._clock() - self._started, mean) if self._started is not None else 0.0
        return max(0.0, left * mean - spent)


def progress_text(progress: Any) -> str:
    """One configuration's progress in words: ``measuring: 42 samples, +/-3.1%, 4 s``."""
    phase = {"warmup": "warming up", "measure": "measuring", "e2e": "end to end"}.get(progress.phase, progress.phase)
    text = f"{phase}: {progress.samples} sample{'s' if progress.samples != 1 else ''}"
    if progress.rel_ci is not None:
        text += f", +/-{progress.rel_ci:.1%}"
    text += f", {progress.elapsed_s:.0f} s"
    if progress.max_time_s:
        text += f" (cap {progress.max_time_s:.0f} s)"
    return text


def fmt_duration(seconds: float) -> str:
    """``8 s``, ``2 min 05 s``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    return f"{seconds // 60} min {seconds % 60:02d} s"


def run_line(index: int, planned: int, label: str, what: str, estimate: RunEstimate | None = None) -> str:
    """``[2/4] resnet50 cpu b1 fp32: measuring: 42 samples, 4 s; about 30 s left``."""
    left = estimate.remaining_s() if estimate is not None else None
    eta = f"; about {fmt_duration(left)} left" if left is not None else ""
    return f"[{index + 1}/{planned}] {label}: {what}{eta}"
