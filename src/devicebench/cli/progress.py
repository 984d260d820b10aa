"""Progress the CLI draws for work that runs in a worker process.

Inference workers report their progress over a pipe (:mod:`devicebench.measure.progress`),
at most once a second; the CLI redraws its bar on each report (:func:`progress_text`,
:class:`RunEstimate` for the time left), so the clock moves while a configuration is
measured and the CLI still takes no CPU in between (it blocks on the pipe).

The training loop reports :class:`~devicebench.measure.training.StepProgress` to a callback;
:class:`TrainProgressBar` is that callback. It travels to the worker by pickle (it holds no
state until its first call) and draws on the worker's stderr, which is the terminal's, only
when that is a terminal. It redraws only when called (no timer thread: nothing may run
beside the timed work).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from devicebench.reports.progress import RunEstimate, fmt_duration, progress_text

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from devicebench.measure.training import StepProgress

__all__ = ["TrainProgressBar", "RunEstimate", "progress_text", "fmt_duration", "live_bar"]


def live_bar(console: Console, *columns: Any) -> Progress:
    """A rich progress bar on ``console`` that is drawn only when the console is a terminal.

    A bar is a redraw: on a terminal it overwrites itself; in a pipe or a file (``> out.txt``,
    ``| tee``, CI logs) rich would leave its last state behind as a stray line, cut at the
    width, repeating what the plain lines already say. There it is off (``disable``): only
    what is printed through ``progress.console`` (one plain line per finished configuration)
    reaches the stream. Redrawn only on :meth:`~rich.progress.Progress.refresh`, never by a
    timer thread (nothing may run beside the timed work).
    """
    from rich.progress import Progress

    return Progress(*columns, console=console, auto_refresh=False, transient=False,
                    disable=not console.is_terminal)


class TrainProgressBar:
    """A rich progress bar per epoch, for ``train_on_device``'s ``on_step``."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._progress: Any = None
        self._task: Any = None
        self._epoch = 0
        self._off = False

    def __getstate__(self) -> dict[str, Any]:
        return {}  # nothing drawn yet travels to the worker

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._reset()

    def _start(self) -> bool:
        if self._progress is None and not self._off:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            console = Console(stderr=True, highlight=False)
            if not console.is_terminal:
                self._off = True
                return False
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), console=console, auto_refresh=False, transient=True)
        return self._progress is not None

    def __call__(self, event: StepProgress) -> None:
        if not self._start():
            return
        title = f"{event.device} epoch {event.epoch}/{event.epochs}"
        if event.epoch != self._epoch or self._task is None:
            self._progress.stop()
            self._progress.start()
            if self._task is not None:
                self._progress.remove_task(self._task)
            self._task = self._progress.add_task(title, total=event.steps)
            self._epoch = event.epoch
        if event.loss is not None:
            title += f" loss {event.loss:.3f}"
        self._progress.update(self._task, completed=event.step, description=title)
        self._progress.refresh()
        if event.step >= event.steps:
            self._progress.stop()

