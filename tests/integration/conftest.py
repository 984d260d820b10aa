"""Fixtures of the integration tests: the listening sockets of a process tree."""

from __future__ import annotations

import socket
from collections.abc import Callable

import psutil
import pytest

Listening = tuple[int, str, str, int]

def _listening_sockets(root: psutil.Process | None = None) -> list[Listening]:
    """Every listening TCP socket and every bound UDP socket of ``root``'s descendants (this
    process's by default): (pid, "tcp" or "udp", address, port)."""
    found = []
    for proc in (root or psutil.Process()).children(recursive=True):
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

@pytest.fixture
def listening_sockets() -> Callable[..., list[Listening]]:
    """:func:`_listening_sockets`: what this test's child processes listen on, now."""
    return _listening_sockets
