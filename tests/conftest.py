"""Shared fixtures: run the CLI in a subprocess, a private results database, GPU skipping."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The warm server (src/devicebench/launchers/warmserver.py) outlives a command. Tests never
# reach the user's: their sockets live in a folder of their own (a short path: a socket's is
# limited to 107 bytes), every server there is stopped when the session ends, and it exits
# after a minute idle if the session is killed. A command gets a fork server of its own
# unless a test asks for the warm one (tests/unit/test_warmserver.py), or the whole suite is
# run with DEVICEBENCH_LAUNCHER=warm.
# (Set once: a test that imports ``tests.conftest`` runs this module a second time.)
if "DEVICEBENCH_TEST_RUNTIME_DIR" not in os.environ:
    os.environ["DEVICEBENCH_TEST_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="dbw-", dir="/tmp" if os.path.isdir("/tmp") else None)
    os.environ["DEVICEBENCH_RUNTIME_DIR"] = os.environ["DEVICEBENCH_TEST_RUNTIME_DIR"]
    os.environ.setdefault("DEVICEBENCH_LAUNCHER", "fork")
    os.environ.setdefault("DEVICEBENCH_SERVER_IDLE_S", "60")
RUNTIME_DIR = os.environ["DEVICEBENCH_TEST_RUNTIME_DIR"]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from devicebench.launchers import warmserver

    with contextlib.suppress(Exception):
        warmserver.stop_servers({"DEVICEBENCH_RUNTIME_DIR": RUNTIME_DIR})
    shutil.rmtree(RUNTIME_DIR, ignore_errors=True)


def _has_accelerator() -> bool:
    import torch

    if torch.cuda.is_available():
        return True
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return True
    xpu = getattr(torch, "xpu", None)
    return bool(xpu is not None and xpu.is_available())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _has_accelerator():
        return
    skip = pytest.mark.skip(reason="needs a GPU (CUDA/ROCm/MPS/XPU); none found on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """Tests that measure in-process call torch.set_num_threads: undo it for the next test."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "results.db"


@pytest.fixture(autouse=True)
def _isolated_store(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never write to the user's real results database from a test."""
    monkeypatch.setenv("DEVICEBENCH_DB", str(tmp_path_factory.mktemp("store") / "default.db"))


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    src = str(ROOT / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@pytest.fixture
def run_cli(tmp_path: Path):
    """Run ``python -m devicebench ARGS`` in a subprocess; returns the CompletedProcess."""

    def _run(*args: str, timeout: float = 300, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "devicebench", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env or cli_env(DEVICEBENCH_DB=str(tmp_path / "cli.db")),
            cwd=cwd or tmp_path,
            stdin=subprocess.DEVNULL,
        )

    return _run


def listening_sockets(root: int | None = None) -> list[tuple[int, str, str, int]]:
    """Every listening TCP socket and every bound UDP socket of the descendants of process
    ``root`` (this one by default): (pid, "tcp" or "udp", address, port). For tests that
    check nothing devicebench starts listens beyond loopback."""
    import psutil

    found = []
    for proc in psutil.Process(root).children(recursive=True):
        try:
            conns = proc.net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied, FileNotFoundError):
            continue  # it ended while we looked
        for c in conns:
            if c.type == socket.SOCK_STREAM and c.status == psutil.CONN_LISTEN:
                found.append((proc.pid, "tcp", c.laddr.ip, c.laddr.port))
            elif c.type == socket.SOCK_DGRAM and c.laddr:
                found.append((proc.pid, "udp", c.laddr.ip, c.laddr.port))
    return found


@contextlib.contextmanager
def sockets_listening_meanwhile(interval_s: float = 0.1):  # type: ignore[no-untyped-def]
    """Yield a list that collects, every ``interval_s`` while the block runs, each new entry of
    :func:`listening_sockets` (this process's descendants)."""
    import threading

    seen: list[tuple[int, str, str, int]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(interval_s):
            seen.extend(s for s in listening_sockets() if s not in seen)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield seen
    finally:
        done.set()
        sampler.join()
