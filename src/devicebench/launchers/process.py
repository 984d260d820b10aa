"""What both launchers share: a call written to a file, answered in another, and one
spawn-and-wait that blocks (never polls) while the measured work runs.

A call is ``(qualified name of a module-level function, the parent's sys.path)`` followed by
a second pickle with the argument, read only once the worker can import the argument's
classes. An answer is ``("ok", value, "")`` or ``("error", one line, traceback)``, written
atomically so the parent sees a whole answer or none. Functions and classes of the script
the parent runs (its ``__main__``) are found by loading that script by path in the child.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import pickle
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["WorkerResult", "clean_stale_tempdirs", "private_tempdir", "python_command", "ProgressPipe", "PROGRESS_FD_ENV", "write_call", "read_call", "answer", "write_answer", "read_answer", "spawn_and_wait",
           "tail", "died"]

#: Name under which a child loads the parent's script (the parent's ``__main__``).
SCRIPT_MODULE = "__devicebench_main__"


@dataclass
class WorkerResult:
    """What came back from a worker (or from rank 0 of a data-parallel launch).

    Attributes:
        ok: the function returned a value.
        value: its return value (when ``ok``).
        error: a one-line description of the failure (when not ``ok``).
        detail: the worker's traceback or the tail of its output.
        returncode: the process's exit status (negative: killed by that signal).
    """

    ok: bool
    value: Any = None
    error: str = ""
    detail: str = ""
    returncode: int = 0


#: Tells a spawned worker which inherited file descriptor is its progress pipe.
PROGRESS_FD_ENV = "DEVICEBENCH_PROGRESS_FD"


class ProgressPipe:
    """A pipe a child writes progress lines to (:mod:`devicebench.measure.progress`) and the
    parent reads while it waits, handing each whole line to ``on_line``."""

    def __init__(self, on_line: Callable[[str], None]) -> None:
        self.on_line = on_line
        self.read_fd, self.write_fd = os.pipe()
        self._partial = b""

    def close_write(self) -> None:
        """Close the parent's copy of the write end (the child has its own)."""
        if self.write_fd >= 0:
            os.close(self.write_fd)
            self.write_fd = -1

    def read(self) -> bool:
        """Read what is there (the caller saw it readable); False at end of file."""
        chunk = os.read(self.read_fd, 1 << 14)
        if not chunk:
            return False
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        for line in lines:
            if line.strip():
                self.on_line(line.decode(errors="replace"))
        return True

    def close(self) -> None:
        self.close_write()
        if self.read_fd >= 0:
            os.close(self.read_fd)
            self.read_fd = -1


class _Unpickler(pickle.Unpickler):
    """An unpickler that looks classes of one module up in another (script <-> its copy)."""

    def __init__(self, fh: Any, renames: dict[str, str]) -> None:
        super().__init__(fh)
        self._renames = renames

    def find_class(self, module: str, name: str) -> Any:
        target = self._renames.get(module)
        if target is not None and target in sys.modules:
            return getattr(sys.modules[target], name)
        return super().find_class(module, name)


def _qualname(func: Callable[..., Any]) -> str:
    module = func.__module__
    if module == "__main__":
        main_file = getattr(sys.modules["__main__"], "__file__", None)
        if main_file is None:
            raise TypeError(
                f"{func.__qualname__} was defined interactively: define it in a module or a "
                "script file to run it in a worker"
            )
        module = "file=" + os.path.abspath(main_file)
    return f"{module}:{func.__qualname__}"


def _import(module: str) -> Any:
    if not module.startswith("file="):
        return importlib.import_module(module)
    spec = importlib.util.spec_from_file_location(SCRIPT_MODULE, module[len("file="):])
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {module[len('file='):]}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[SCRIPT_MODULE] = mod
    spec.loader.exec_module(mod)  # under another name, so its main block does not run
    return mod


def _resolve(path: str) -> Any:
    module, _, name = path.rpartition(":")
    obj: Any = _import(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


#: Temporary folders of launches: ``devicebench-<kind><parent pid>-<random>``.
TEMP_PREFIX = "devicebench-"
_cleaned = False


@contextlib.contextmanager
def private_tempdir(kind: str) -> Iterator[Path]:
    """A temporary folder (only this user can read it) for one launch's call, answer and log.

    Removed when the launch ends; a folder left by a parent killed with ``kill -9`` is
    removed by the next launch of any devicebench process (:func:`clean_stale_tempdirs`).
    """
    global _cleaned
    if not _cleaned:
        _cleaned = True
        clean_stale_tempdirs()
    with tempfile.TemporaryDirectory(prefix=f"{TEMP_PREFIX}{kind}{os.getpid()}-") as tmp:
        yield Path(tmp)


def clean_stale_tempdirs(root: str | Path | None = None) -> list[Path]:
    """Remove this user's launch folders whose parent process is gone; returns them."""
    removed = []
    base = Path(root or tempfile.gettempdir())
    try:
        entries = list(base.glob(TEMP_PREFIX + "*"))
    except OSError:
        return removed
    for folder in entries:
        digits = folder.name[len(TEMP_PREFIX):].lstrip("abcdefghijklmnopqrstuvwxyz").partition("-")[0]
        try:
            if not digits.isdigit() or not folder.is_dir() or folder.stat().st_uid != os.getuid():
                continue
        except OSError:
            continue
        if _alive(int(digits)):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process: not ours to judge
    return True


def python_command(module: str, *args: str) -> list[str]:
    """``python -P -m module args...``: ``-P`` keeps the current folder off ``sys.path``, so a
    ``torch.py`` or ``devicebench.py`` where the user runs devicebench is never imported by a
    worker (``PYTHONPATH`` still counts, unlike with ``-I``)."""
    return [sys.executable, "-P", "-m", module, *args]


def write_call(path: Path, func: Callable[..., Any], arg: Any) -> None:
    """Write ``func(arg)`` for a child to run. ``func`` must be a module-level function."""
    with path.open("wb") as fh:
        # The parent's import path travels too, so that functions of a script, a notebook's
        # folder or a test module resolve in the child as they do here.
        pickle.dump((_qualname(func), list(sys.path)), fh)
        pickle.dump(arg, fh)  # a second pickle, read once the child can import its classes


def read_call(path: Path) -> tuple[Callable[..., Any], Any]:
    """The function and argument written by :func:`write_call` (in the child)."""
    with path.open("rb") as fh:
        name, parent_path = pickle.load(fh)
        sys.path.extend(p for p in parent_path if p not in sys.path)
        func = _resolve(name)
        # Classes of the parent's script were pickled as __main__.X: look them up in the
        # copy of that script that _resolve loaded here.
        arg = _Unpickler(fh, {"__main__": SCRIPT_MODULE}).load()
    return func, arg


def answer(call: Callable[[], Any]) -> tuple[str, Any, str]:
    """Run ``call`` and turn what happened into an answer; never raises."""
    try:
        return ("ok", call(), "")
    except BaseException as exc:  # noqa: BLE001 - report every failure to the parent
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return ("error", f"{type(exc).__name__}: {first}", traceback.format_exc())


def write_answer(path: Path, result: tuple[str, Any, str]) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as fh:
        pickle.dump(result, fh)
    os.replace(tmp, path)  # the parent sees a whole answer or none


def read_answer(path: Path) -> tuple[str, Any, str] | None:
    """The answer at ``path`` (classes of the parent's script mapped back), or None."""
    if not path.exists():
        return None
    with path.open("rb") as fh:
        result: tuple[str, Any, str] = _Unpickler(fh, {SCRIPT_MODULE: "__main__"}).load()
    return result


def tail(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


def died(returncode: int) -> str:
    """How a child ended, in words."""
    if returncode < 0:
        return f"killed by signal {-returncode} ({signal.Signals(-returncode).name})"
    return f"exit status {returncode}"


def spawn_and_wait(command: Sequence[str], *, log_path: Path, env: dict[str, str], timeout: float | None = None,
                   stderr_to_log: bool = True, stop_grace_s: float = 5.0,
                   progress: ProgressPipe | None = None) -> int | None:
    """Start ``command`` and block in ``waitpid`` until it ends; return its exit status.

    The parent takes no CPU time from the measurement while it waits (on a 2-core machine a
    polling parent was measured to slow CPU inference 3-4x). stdout goes to ``log_path``,
    stderr too unless ``stderr_to_log`` is False (then to the parent's stderr, for a progress
    bar the child draws itself). With ``progress`` the child inherits the pipe's write end
    (named in its environment) and the parent blocks in ``select`` on the read end until the
    child closes it, handing each line over as it comes, then in ``waitpid``.

    Returns:
        The exit status, or None when ``timeout`` passed (the child is then killed).

    Raises:
        BaseException: whatever interrupted the wait (Ctrl-C, SIGTERM as
            :class:`~devicebench.errors.Terminated`), after the child was sent SIGTERM and
            given ``stop_grace_s`` to end (then killed).
    """
    with log_path.open("wb") as log:
        pass_fds: tuple[int, ...] = ()
        if progress is not None:
            env = {**env, PROGRESS_FD_ENV: str(progress.write_fd)}
            pass_fds = (progress.write_fd,)
        proc = subprocess.Popen(list(command), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT if stderr_to_log else None, env=env, pass_fds=pass_fds)
        try:
            if progress is not None:
                progress.close_write()
                deadline = None if timeout is None else time.monotonic() + timeout
                while True:  # blocks in select until a line or the end: no polling
                    left = None if deadline is None else max(0.0, deadline - time.monotonic())
                    readable, _, _ = select.select([progress.read_fd], [], [], left)
                    if not readable:
                        raise subprocess.TimeoutExpired(command, timeout or 0)
                    if not progress.read():
                        break
                timeout = None if deadline is None else max(0.01, deadline - time.monotonic())
            return proc.wait(timeout=timeout)  # blocks in waitpid: no polling
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return None
        except BaseException:
            # Ctrl-C or SIGTERM in the parent: stop the child, then let it propagate.
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=stop_grace_s)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            raise


#: Names the parent in a worker's or rank's environment (see :func:`die_with_parent`).
PARENT_ENV = "DEVICEBENCH_WORKER_PARENT"


def die_with_parent() -> None:
    """Stop this worker or rank when its parent dies, even by ``kill -9`` (Linux:
    PR_SET_PDEATHSIG). Elsewhere it outlives a killed parent only until its call ends."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            return
    parent = os.environ.get(PARENT_ENV)
    if parent and parent.isdigit() and os.getppid() != int(parent):
        os._exit(1)  # the parent died before the line above took effect
