"""Run one measurement in a fresh Python process, and wait for it without spinning.

Each configuration gets its own interpreter (``python -m devicebench.measure.worker``), so
nothing (thread pools, the CUDA context, the caching allocator, compiled graphs) carries
over from one configuration to the next. The parent blocks in ``waitpid`` while the worker
runs: it takes no CPU time away from the measurement (on a 2-core machine a polling parent
was measured to slow CPU inference 3-4x).

The call and its answer travel as pickles through files in a private temporary folder that
only this user can read; the worker's own output goes to a log whose tail is kept when it
fails.
"""

from __future__ import annotations

import importlib
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["WorkerResult", "run_in_worker"]


@dataclass
class WorkerResult:
    """What came back from a worker.

    Attributes:
        ok: the function returned a value.
        value: its return value (when ``ok``).
        error: a one-line description of the failure (when not ``ok``).
        detail: the worker's traceback or the tail of its output.
        returncode: the worker's exit status (negative: killed by that signal).
    """

    ok: bool
    value: Any = None
    error: str = ""
    detail: str = ""
    returncode: int = 0


def _qualname(func: Any) -> str:
    return f"{func.__module__}:{func.__qualname__}"


def _resolve(path: str) -> Any:
    module, _, name = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def run_in_worker(func: Any, arg: Any, *, timeout: float | None = None) -> WorkerResult:
    """Call ``func(arg)`` in a fresh interpreter and return what it returned.

    ``func`` must be a module-level function (it is found again by name in the worker);
    ``arg`` and the result must pickle. KeyboardInterrupt in the parent stops the worker and
    propagates.
    """
    with tempfile.TemporaryDirectory(prefix="devicebench-") as tmp:
        tmpdir = Path(tmp)
        call_path, answer_path, log_path = tmpdir / "call.pkl", tmpdir / "answer.pkl", tmpdir / "worker.log"
        with call_path.open("wb") as fh:
            pickle.dump((_qualname(func), arg), fh)
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env[_PARENT_ENV] = str(os.getpid())
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "devicebench.measure.worker", str(call_path), str(answer_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
            try:
                returncode = proc.wait(timeout=timeout)  # blocks in waitpid: no polling
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                return WorkerResult(ok=False, error=f"worker timed out after {timeout:.0f} s",
                                    detail=_tail(log_path), returncode=proc.returncode)
            except BaseException:
                # Ctrl-C or SIGTERM in the parent: stop the worker, then let it propagate.
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
                raise
        if answer_path.exists():
            with answer_path.open("rb") as fh:
                status, payload, detail = pickle.load(fh)
            if status == "ok":
                return WorkerResult(ok=True, value=payload, returncode=returncode)
            return WorkerResult(ok=False, error=payload, detail=detail, returncode=returncode)
        how = (f"killed by signal {-returncode} ({signal.Signals(-returncode).name})"
               if returncode < 0 else f"exit status {returncode}")
        return WorkerResult(ok=False, error=f"worker process died ({how}) before answering",
                            detail=_tail(log_path), returncode=returncode)


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


def _main(argv: list[str]) -> int:
    call_path, answer_path = Path(argv[0]), Path(argv[1])
    with call_path.open("rb") as fh:
        name, arg = pickle.load(fh)
    try:
        answer: tuple[str, Any, str] = ("ok", _resolve(name)(arg), "")
    except BaseException as exc:  # noqa: BLE001 - report every failure to the parent
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        answer = ("error", f"{type(exc).__name__}: {first}", traceback.format_exc())
    tmp = answer_path.with_suffix(".tmp")
    with tmp.open("wb") as fh:
        pickle.dump(answer, fh)
    os.replace(tmp, answer_path)  # the parent sees a whole answer or none
    return 0


#: The parent's pid, so that a worker whose parent is already gone stops at once.
_PARENT_ENV = "DEVICEBENCH_WORKER_PARENT"


def _die_with_parent() -> None:
    """Stop this worker when its parent dies, even by ``kill -9`` (Linux: PR_SET_PDEATHSIG).

    Elsewhere a worker outlives a killed parent only until its one configuration ends.
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            return
    parent = os.environ.get(_PARENT_ENV)
    if parent and parent.isdigit() and os.getppid() != int(parent):
        os._exit(1)  # the parent died before the line above took effect


if __name__ == "__main__":
    _die_with_parent()
    sys.exit(_main(sys.argv[1:]))
