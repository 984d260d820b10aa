"""Run one measurement in a fresh Python process, and wait for it without spinning.

Each configuration gets its own interpreter (``python -m devicebench.launchers.worker``), so
nothing (thread pools, the CUDA context, the caching allocator, compiled graphs) carries
over from one configuration to the next. The parent blocks in ``waitpid`` while the worker
runs (:func:`~devicebench.launchers.process.spawn_and_wait`).

The call and its answer travel as pickles through files in a private temporary folder that
only this user can read; the worker's own output goes to a log whose tail is kept when it
fails.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devicebench.launchers import process
from devicebench.launchers.process import WorkerResult

__all__ = ["WorkerResult", "run_in_worker"]

#: The parent's pid, so that a worker whose parent is already gone stops at once.
_PARENT_ENV = "DEVICEBENCH_WORKER_PARENT"


def run_in_worker(func: Callable[[Any], Any], arg: Any, *, timeout: float | None = None,
                  inherit_stderr: bool = False) -> WorkerResult:
    """Call ``func(arg)`` in a fresh interpreter and return what it returned.

    ``func`` must be a module-level function of a module or script file (it is found again
    by name in the worker); ``arg`` and the result must pickle. KeyboardInterrupt (or any
    exception) in the parent stops the worker and propagates. With ``inherit_stderr`` the
    worker writes its stderr to the parent's (for a progress bar drawn by the worker itself);
    stdout still goes to the log.
    """
    with process.private_tempdir("w") as tmpdir:
        call_path, answer_path, log_path = tmpdir / "call.pkl", tmpdir / "answer.pkl", tmpdir / "worker.log"
        process.write_call(call_path, func, arg)
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env["PYTHONSAFEPATH"] = "1"  # and whatever the worker starts: the current folder stays off sys.path
        env[_PARENT_ENV] = str(os.getpid())
        returncode = process.spawn_and_wait(
            process.python_command("devicebench.launchers.worker", str(call_path), str(answer_path)),
            log_path=log_path, env=env, timeout=timeout, stderr_to_log=not inherit_stderr)
        if returncode is None:
            return WorkerResult(ok=False, error=f"worker timed out after {timeout:.0f} s",
                                detail=process.tail(log_path), returncode=-signal.SIGKILL)
        result = process.read_answer(answer_path)
        if result is None:
            return WorkerResult(ok=False, error=f"worker process died ({process.died(returncode)}) before answering",
                                detail=process.tail(log_path), returncode=returncode)
        status, payload, detail = result
        if status == "ok":
            return WorkerResult(ok=True, value=payload, returncode=returncode)
        return WorkerResult(ok=False, error=payload, detail=detail, returncode=returncode)


def _main(argv: list[str]) -> int:
    call_path, answer_path = Path(argv[0]), Path(argv[1])

    def call() -> Any:
        func, arg = process.read_call(call_path)
        return func(arg)

    process.write_answer(answer_path, process.answer(call))
    return 0


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
