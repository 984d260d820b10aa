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
