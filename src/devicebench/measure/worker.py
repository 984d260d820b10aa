"""Run one measurement in a fresh Python process, and wait for it without spinning.

Each configuration gets its own interpreter (``python -m devicebench.measure.worker``), so
nothing (thread pools, the CUDA context, the caching allocator, compiled graphs) carries
over from one configuration to the next. The parent blocks in ``waitpid`` while the worker
runs: it takes no CPU time away from the measurement (on a 2-core machine a polling parent
was measured to slow CPU inference 3-4x).

The call and its answer travel as pickles through files in a private temporary folder that
only this user can read; the worker's own output goes to a log whose tail is kept when it
fails. Functions and classes of the script the parent runs (its ``__main__``) are found by
loading that script by path in the worker.
"""

from __future__ import annotations

import importlib
import importlib.util
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

#: Name under which a worker loads the parent's script (the parent's ``__main__``).
_SCRIPT_MODULE = "__devicebench_main__"


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


def _qualname(func: Any) -> str:
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
    spec = importlib.util.spec_from_file_location(_SCRIPT_MODULE, module[len("file="):])
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {module[len('file='):]}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[_SCRIPT_MODULE] = mod
    spec.loader.exec_module(mod)  # under another name, so its main block does not run
    return mod


def _resolve(path: str) -> Any:
    module, _, name = path.rpartition(":")
    obj: Any = _import(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def run_in_worker(func: Any, arg: Any, *, timeout: float | None = None, inherit_stderr: bool = False) -> WorkerResult:
    """Call ``func(arg)`` in a fresh interpreter and return what it returned.

    ``func`` must be a module-level function of a module or script file (it is found again
    by name in the worker); ``arg`` and the result must pickle. KeyboardInterrupt (or any
    exception) in the parent stops the worker and propagates. With ``inherit_stderr`` the
    worker writes its stderr to the parent's (for a progress bar drawn by the worker itself);
    stdout still goes to the log.
    """
    with tempfile.TemporaryDirectory(prefix="devicebench-") as tmp:
        tmpdir = Path(tmp)
        call_path, answer_path, log_path = tmpdir / "call.pkl", tmpdir / "answer.pkl", tmpdir / "worker.log"
        with call_path.open("wb") as fh:
            # The parent's import path travels too, so that functions of a script, a
            # notebook's folder or a test module resolve in the worker as they do here.
            pickle.dump((_qualname(func), list(sys.path)), fh)
            pickle.dump(arg, fh)  # a second pickle, read once the worker can import its classes
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env[_PARENT_ENV] = str(os.getpid())
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "devicebench.measure.worker", str(call_path), str(answer_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=None if inherit_stderr else subprocess.STDOUT,
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
                status, payload, detail = _Unpickler(fh, {_SCRIPT_MODULE: "__main__"}).load()
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


def _call(call_path: Path) -> Any:
    with call_path.open("rb") as fh:
        name, parent_path = pickle.load(fh)
        sys.path.extend(p for p in parent_path if p not in sys.path)
        func = _resolve(name)
        # Classes of the parent's script were pickled as __main__.X: look them up in the
        # copy of that script that _resolve loaded here.
        arg = _Unpickler(fh, {"__main__": _SCRIPT_MODULE}).load()
    return func(arg)


def _main(argv: list[str]) -> int:
    call_path, answer_path = Path(argv[0]), Path(argv[1])
    try:
        answer: tuple[str, Any, str] = ("ok", _call(call_path), "")
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
