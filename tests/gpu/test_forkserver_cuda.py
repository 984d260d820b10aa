"""Forked workers on a GPU: each child starts its own CUDA context from a server that never
initialised CUDA, and what one child allocates is not seen by the next (issue 14)."""

from __future__ import annotations

import os

import pytest
import torch

from devicebench.launchers import forkserver
from devicebench.launchers.worker import run_in_worker

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(forkserver.fork_unavailable_reason() is not None, reason="fork server unavailable")]


def _use_cuda(size: int) -> dict:
    import torch

    before = torch.cuda.is_initialized()
    x = torch.ones(size, size, device="cuda")
    torch.cuda.synchronize()
    return {"pid": os.getpid(), "initialised_before": before, "allocated_mb": torch.cuda.memory_allocated() / 2**20,
            "sum": float((x @ x).sum().item())}


def test_each_forked_child_gets_its_own_cuda_context() -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    with forkserver.session() as server:
        assert server is not None
        first = run_in_worker(_use_cuda, 2048)
        second = run_in_worker(_use_cuda, 256)
        ready = server.wait_ready()
    assert first.ok and second.ok, (first.error, first.detail, second.error, second.detail)
    a, b = first.value, second.value
    assert a["pid"] != b["pid"] and ready["pid"] not in (a["pid"], b["pid"])
    assert a["initialised_before"] is False and b["initialised_before"] is False
    assert b["allocated_mb"] < a["allocated_mb"]  # child one's 16 MiB tensor is not in child two
    assert b["sum"] == 256.0 ** 3


def test_children_of_a_warm_server_each_get_their_own_cuda_context(monkeypatch, tmp_path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    import tempfile

    from devicebench.launchers import warmserver

    folder = tempfile.mkdtemp(prefix="dbw-", dir="/tmp") + "/rt"
    monkeypatch.setenv(warmserver.RUNTIME_ENV, folder)
    monkeypatch.setenv(forkserver.LAUNCHER_ENV, "warm")
    try:
        with forkserver.session() as server:  # one command
            assert server is not None and server.warm is not None
            first = run_in_worker(_use_cuda, 2048)
        with forkserver.session() as again:  # the next command, same warm server
            assert again is not None and again.warm is not None and again.warm["started"] is False
            second = run_in_worker(_use_cuda, 256)
    finally:
        warmserver.stop_servers({warmserver.RUNTIME_ENV: folder})
    assert first.ok and second.ok, (first.error, first.detail, second.error, second.detail)
    assert first.value["initialised_before"] is False and second.value["initialised_before"] is False
    assert second.value["allocated_mb"] < first.value["allocated_mb"] and second.value["sum"] == 256.0 ** 3
