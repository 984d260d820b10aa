"""`train --nproc` opens no socket beyond loopback (issue 12 case 4), and its launcher stops
every rank when one fails.

The ranks are devicebench's own (launchers/ranks.py): a file store for the rendezvous, gloo
pinned to the loopback interface. torchrun's agent (the launcher before) kept a TCP store
listening on every interface, which the test below saw as ``0.0.0.0``/``::``.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import psutil
import pytest
import torch
from conftest import listening_sockets

from devicebench.launchers.ranks import DistributedPlan, run_ranks

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
    reason="this torch build has no gloo backend")


def other_interface() -> str | None:
    """A network interface that is not loopback, with an IPv4 address, if this machine has one."""
    for name, addresses in psutil.net_if_addrs().items():
        if any(a.family == socket.AF_INET and not a.address.startswith("127.") for a in addresses):
            return name
    return None


def _wait_for(path: Path, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > end:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.05)


def _gate(folder: str) -> tuple[int, bool]:
    """In each rank: one all-reduce and a gather of every rank's random states (the group is
    up, its connections made; the states travel as tensors, never as pickles), then say so and
    wait until the test has looked at the sockets."""
    import torch.distributed as dist

    from devicebench.measure.shard import Shard

    t = torch.ones(1)
    dist.all_reduce(t)
    rank = dist.get_rank()
    torch.manual_seed(100 + rank)
    states = Shard(rank, 2, "gloo").gather_rng_states(torch.get_rng_state(), None, torch.device("cpu"))
    expected = []
    for r in range(2):
        torch.manual_seed(100 + r)
        expected.append(torch.get_rng_state())
    same = [cuda is None and torch.equal(cpu, want) for (cpu, cuda), want in zip(states, expected)]
    Path(folder, f"ready-{rank}").write_text(str(os.getpid()))
    _wait_for(Path(folder, "sampled"))
    dist.barrier()
    return rank * 10 + int(t.item()), all(same) and len(same) == 2


def _rank_1_fails(_: object) -> str:
    """Rank 1 raises; rank 0 waits in an all-reduce for it, which would never end by itself."""
    import torch.distributed as dist

    if dist.get_rank() == 1:
        raise ValueError("rank one gives up")
    dist.all_reduce(torch.ones(1))
    return "unreachable"


def test_ranks_listen_on_loopback_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While two gloo ranks are joined (held at a gate), every listening socket of the whole
    process tree is on 127.0.0.1 or ::1, even with GLOO_SOCKET_IFNAME/NCCL_SOCKET_IFNAME set
    to a network interface in the environment (the launcher overrides them)."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("two gloo ranks need two cores")
    iface = other_interface()
    if iface is not None:
        monkeypatch.setenv("GLOO_SOCKET_IFNAME", iface)
        monkeypatch.setenv("NCCL_SOCKET_IFNAME", iface)
    results = []
    launch = threading.Thread(target=lambda: results.append(
        run_ranks(_gate, str(tmp_path), DistributedPlan("cpu", 2, "gloo", 1), timeout=240)))
    launch.start()
    try:
        for rank in range(2):
            _wait_for(tmp_path / f"ready-{rank}")
        sockets = listening_sockets()
    finally:
        (tmp_path / "sampled").write_text("")
        launch.join(timeout=240)
    (result,) = results
    assert result.ok, f"{result.error}\n{result.detail}"
    assert result.value == (2, True)  # rank 0's answer: 0 * 10 + the all-reduced 1 + 1; both ranks' states
    rank_pids = {int((tmp_path / f"ready-{rank}").read_text()) for rank in range(2)}
    assert rank_pids <= {pid for pid, *_ in sockets}, f"gloo's listeners were not seen: {sockets}"
    assert all(ip in {"127.0.0.1", "::1"} for _, _, ip, _ in sockets), f"listening beyond loopback: {sockets}"


def test_a_failing_rank_stops_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rank 1 fails while rank 0 waits for it in a collective: the launch ends within the
    grace period with rank 1's error, and no rank is left behind."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("two gloo ranks need two cores")
    from devicebench.launchers import ranks

    monkeypatch.setattr(ranks, "FAIL_GRACE_S", 1.0)
    monkeypatch.setattr(ranks, "STOP_GRACE_S", 2.0)
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    start = time.monotonic()
    result = run_ranks(_rank_1_fails, None, DistributedPlan("cpu", 2, "gloo", 1), timeout=240)
    assert not result.ok
    assert result.error == "rank 1: ValueError: rank one gives up", result.error
    assert "Traceback" in result.detail
    assert time.monotonic() - start < 200  # not gloo's 30-minute collective timeout
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= before
