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


def _import_torch(_: object) -> str:
    import torch

    return str(torch.__file__)


def test_a_torch_py_or_devicebench_py_in_the_current_folder_does_not_run(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Workers start with ``python -P``: the folder the user runs devicebench in is not on the
    worker's import path (issue 12 case 2)."""
    marker = tmp_path / "PWNED"
    for name in ("torch.py", "devicebench.py"):
        (tmp_path / name).write_text(f"open({str(marker)!r}, 'a').write({name!r})\n")
    monkeypatch.chdir(tmp_path)
    result = run_in_worker(_import_torch, None)
    assert result.ok, result.error + result.detail
    assert not marker.exists(), marker.read_text()
    assert "site-packages" in result.value or str(tmp_path) not in result.value


def test_torchrun_binds_no_rendezvous_socket_and_starts_with_a_safe_path(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Single-node torchrun: no ``--standalone`` (its rendezvous store listens on every interface
    and its state is unpickled); a private file store and loopback addresses instead (case 4)."""
    from pathlib import Path

    from devicebench.launchers.torchrun import DistributedPlan, torchrun_command

    command = torchrun_command(DistributedPlan("cpu", 2, "gloo", 1), Path(tmp_path / "call.pkl"), Path(tmp_path))
    assert command[1] == "-P" and "--standalone" not in command
    assert command[command.index("--rdzv-conf") + 1] == "store_type=file"
    assert command[command.index("--rdzv-endpoint") + 1].startswith(str(tmp_path))
    assert command[command.index("--master-addr") + 1] == "127.0.0.1"
    assert command[command.index("--local-addr") + 1] == "127.0.0.1"
