"""Run one measurement in a fresh Python process, and wait for it without spinning.

Each configuration gets its own process, so nothing (thread pools, the CUDA context, the
caching allocator, compiled graphs) carries over from one configuration to the next: a child
forked by the run's fork server (:mod:`.forkserver`, which has imported torch once and never
touched a device) where that is safe, else a new interpreter
(``python -m devicebench.launchers.worker``). The parent blocks (``select``/``waitpid``) while
the worker runs, reading the progress it reports over a pipe when asked to.

The call and its answer travel as pickles through files in a private temporary folder that
only this user can read; the worker's own output goes to a log whose tail is kept when it
fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devicebench.launchers import forkserver, process
from devicebench.launchers.process import WorkerResult

__all__ = ["WorkerResult", "run_in_worker", "run_call"]

#: The parent's pid, so that a worker whose parent is already gone stops at once.
_PARENT_ENV = process.PARENT_ENV


def run_in_worker(func: Callable[[Any], Any], arg: Any, *, timeout: float | None = None,
                  inherit_stderr: bool = False, on_progress: Callable[[str], None] | None = None,
                  server: forkserver.ForkServer | None = None) -> WorkerResult:
    """Call ``func(arg)`` in a fresh interpreter and return what it returned.

    ``func`` must be a module-level function of a module or script file (it is found again
    by name in the worker); ``arg`` and the result must pickle. KeyboardInterrupt (or any
    exception) in the parent stops the worker and propagates. With ``inherit_stderr`` the
    worker writes its stderr to the parent's (for a progress bar drawn by the worker itself);
    stdout still goes to the log. With ``on_progress`` each progress line the worker reports
    (:mod:`devicebench.measure.progress`, one JSON object) is handed over as it arrives.
    The worker is forked from ``server`` if given, else from the session's fork server
    (:func:`~devicebench.launchers.forkserver.active`), else spawned.
    """
    with process.private_tempdir("w") as tmpdir:
        call_path, answer_path, log_path = tmpdir / "call.pkl", tmpdir / "answer.pkl", tmpdir / "worker.log"
        process.write_call(call_path, func, arg)
        env = forkserver.worker_env()
        returncode = _launch(call_path, answer_path, log_path, env, timeout=timeout,
                             inherit_stderr=inherit_stderr, on_progress=on_progress, server=server)
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


def _launch(call_path: Path, answer_path: Path, log_path: Path, env: dict[str, str], *, timeout: float | None,
            inherit_stderr: bool, on_progress: Callable[[str], None] | None,
            server: forkserver.ForkServer | None = None) -> int | None:
    """Run the call in a child of ``server``, of the session's fork server, or of a warm
    server that is running (outside a session: ``train``, ``serve``, ``llm``...), or else in
    a spawned interpreter."""
    server = server or forkserver.active()
    with contextlib.ExitStack() as stack:
        if server is None:
            server = stack.enter_context(forkserver.running_warm_session())
        if server is not None and server.fits(env):
            progress = process.ProgressPipe(on_progress) if on_progress is not None else None
            try:
                return server.run(call_path, answer_path, log_path, timeout=timeout, inherit_stderr=inherit_stderr,
                                  progress=progress, env=env)
            except forkserver.ForkUnavailable:
                pass  # nothing was started: spawn it instead
            finally:
                if progress is not None:
                    progress.close()
    progress = process.ProgressPipe(on_progress) if on_progress is not None else None
    try:
        return process.spawn_and_wait(
            process.python_command("devicebench.launchers.worker", str(call_path), str(answer_path)),
            log_path=log_path, env=env, timeout=timeout, stderr_to_log=not inherit_stderr, progress=progress)
    finally:
        if progress is not None:
            progress.close()


def run_call(call_path: Path, answer_path: Path, progress_fd: int | None = None) -> None:
    """In the worker: run the call written at ``call_path`` and write its answer, reporting
    progress to ``progress_fd`` when given (spawned and forked workers alike)."""
    if progress_fd is not None:
        from devicebench.measure.progress import Reporter, install, pipe_writer

        install(Reporter(pipe_writer(progress_fd)))

    def call() -> Any:
        func, arg = process.read_call(call_path)
        return func(arg)

    process.write_answer(answer_path, process.answer(call))


def _main(argv: list[str]) -> int:
    fd = os.environ.pop(process.PROGRESS_FD_ENV, "")
    run_call(Path(argv[0]), Path(argv[1]), int(fd) if fd.isdigit() else None)
    return 0




if __name__ == "__main__":
    process.die_with_parent()
    sys.exit(_main(sys.argv[1:]))
