"""Fresh worker processes: values come back, failures and crashes are reported."""

from __future__ import annotations

import os
import signal

from devicebench.launchers.worker import run_in_worker


def _double(x: int) -> tuple[int, int]:
    return 2 * x, os.getpid()


def _fail(_: object) -> None:
    raise ValueError("bad value in worker")


def _die(_: object) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_value_comes_back_from_another_process() -> None:
    result = run_in_worker(_double, 21)
    assert result.ok
    value, pid = result.value
    assert value == 42 and pid != os.getpid()


def test_an_exception_is_reported_with_its_traceback() -> None:
    result = run_in_worker(_fail, None)
    assert not result.ok
    assert result.error == "ValueError: bad value in worker"
    assert "Traceback" in result.detail


def test_a_crash_is_reported() -> None:
    result = run_in_worker(_die, None)
    assert not result.ok
    assert "SIGKILL" in result.error and result.returncode == -signal.SIGKILL


def test_launcher_modules_run_as_main_without_a_double_import() -> None:
    # `python -m devicebench.launchers.worker` must not find the module already imported by
    # its package (runpy warns, on the terminal a training worker shares with the user).
    import subprocess
    import sys

    for module in ("devicebench.launchers.worker", "devicebench.launchers.torchrun"):
        done = subprocess.run([sys.executable, "-m", module], capture_output=True, text=True, timeout=120)
        assert "found in sys.modules" not in done.stderr, done.stderr
        assert "Traceback" in done.stderr  # it ran (and failed for want of arguments)
