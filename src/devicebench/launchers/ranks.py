"""N data-parallel processes on one machine, started and waited for by devicebench itself.

The parent (:func:`run_ranks`) starts N rank processes, ``python -P -m
devicebench.launchers.ranks CALL OUTDIR`` (:func:`rank_command`), each with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and ``LOCAL_WORLD_SIZE`` in its environment
(:func:`rank_env`), and blocks until they end. Each rank (this module's ``__main__``) pins
its GPU (CUDA: one per local rank), joins the process group (``nccl`` on CUDA, ``gloo`` on
the CPU) through a file store in the launch's private temporary folder, calls the function
written in CALL with ``threads_per_rank`` intra-op threads and writes its answer into
OUTDIR, as a worker of :mod:`devicebench.launchers.worker` does. Rank 0's answer is the
launch's value.

Why not torchrun: its agent opens a TCP store that listens on every network interface
(torch 2.14's ``TCPStore`` binds ``*`` whatever host it is given), and its rendezvous
unpickles what it reads from its store. Here nothing listens beyond loopback: the
rendezvous is a file (no socket at all) and gloo's and NCCL's own connections are pinned
to the loopback interface. Several machines are not supported.

What the function does (train a shard, say) is its own business: this module knows nothing
of training.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devicebench.launchers import process
from devicebench.launchers.process import WorkerResult

__all__ = ["FAIL_GRACE_S", "STOP_GRACE_S", "DistributedPlan", "loopback_interface", "rank_command", "rank_env",
           "run_ranks"]

#: After one rank failed, the others get this long (s) to end by themselves (a rank waiting
#: in a collective for the one that died never would) before they are stopped.
FAIL_GRACE_S = 5.0
#: A rank sent SIGTERM gets this long (s) to finish (rank 0 writes its interrupted record)
#: before it is killed.
STOP_GRACE_S = 15.0

#: The parent's pid, so that a rank whose parent is already gone stops at once.
_PARENT_ENV = process.PARENT_ENV


@dataclass(frozen=True)
class DistributedPlan:
    """How N data-parallel processes are laid out on one device type.

    Attributes:
        device_type: ``cpu`` or ``cuda``.
        nproc: number of processes (ranks).
        backend: ``gloo`` (CPU) or ``nccl`` (CUDA).
        threads_per_rank: CPU intra-op threads each rank uses.
    """

    device_type: str
    nproc: int
    backend: str
    threads_per_rank: int


def loopback_interface() -> str:
    """The name of the network interface that holds 127.0.0.1 (``lo`` on Linux, ``lo0`` on
    macOS): the only one gloo and NCCL are allowed to listen on."""
    import socket

    import psutil

    try:
        for name, addresses in psutil.net_if_addrs().items():
            if any(a.family == socket.AF_INET and a.address == "127.0.0.1" for a in addresses):
                return name
    except (OSError, RuntimeError):
        pass
    return "lo"


def rank_command(call_path: Path, outdir: Path) -> list[str]:
    """The command line of every rank: ``python -P -m devicebench.launchers.ranks CALL OUTDIR``
    (``-P``: no module of the current folder is imported)."""
    return process.python_command("devicebench.launchers.ranks", str(call_path), str(outdir))


def rank_env(plan: DistributedPlan, rank: int, base: dict[str, str], *, iface: str | None = None) -> dict[str, str]:
    """The environment of rank ``rank``: ``base`` with the rank's place in the group, its
    threads, a safe import path, and the data transports pinned to loopback.

    ``GLOO_SOCKET_IFNAME`` and ``NCCL_SOCKET_IFNAME`` override whatever the user set: gloo
    would otherwise listen on the address the host name resolves to (often a LAN address),
    NCCL's bootstrap on the first non-loopback interface it finds. ``MASTER_ADDR`` is set for
    any library that reads it; the group itself is joined through a file store.
    """
    iface = iface or loopback_interface()
    env = dict(base)
    package_root = str(Path(__file__).resolve().parents[2])  # the ranks import this devicebench
    env["PYTHONPATH"] = package_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update({
        "RANK": str(rank), "LOCAL_RANK": str(rank),
        "WORLD_SIZE": str(plan.nproc), "LOCAL_WORLD_SIZE": str(plan.nproc),
        "OMP_NUM_THREADS": str(plan.threads_per_rank),
        "PYTHONSAFEPATH": "1",  # and whatever the rank starts: the current folder stays off sys.path
        "PYTHONUNBUFFERED": "1",
        "MASTER_ADDR": "127.0.0.1",
        "GLOO_SOCKET_IFNAME": iface,
        "NCCL_SOCKET_IFNAME": "=" + iface,  # '=': exactly this interface, not every name it starts
        _PARENT_ENV: str(os.getpid()),
    })
    for name in ("MASTER_PORT", "TORCHELASTIC_RUN_ID", "GROUP_RANK", "ROLE_RANK", "NCCL_COMM_ID"):
        env.pop(name, None)  # a launcher's leftovers must not send a rank to another store
    return env


def run_ranks(func: Callable[[Any], Any], arg: Any, plan: DistributedPlan, *,
              timeout: float | None = None) -> WorkerResult:
    """Call ``func(arg)`` in each of ``plan.nproc`` rank processes; wait for them all.

    The parent blocks (one thread per rank sits in ``waitpid``; the main thread waits on a
    queue they fill): no polling. When a rank fails, the others get :data:`FAIL_GRACE_S` to
    end, then SIGTERM, then SIGKILL. A Ctrl-C or SIGTERM here sends every rank SIGTERM
    (rank 0 keeps its finished epochs, as a single worker does), waits :data:`STOP_GRACE_S`,
    kills what is left and propagates. Rank 0's stderr is the parent's (its progress shows on
    the terminal); the other ranks' output goes to their logs.

    Returns:
        A :class:`WorkerResult` whose value is rank 0's return value, or the error of the
        rank that failed first (rank 0's value wins when it returned one marked
        ``interrupted``).
    """
    with process.private_tempdir("ddp") as tmpdir:
        call_path = tmpdir / "call.pkl"
        process.write_call(call_path, func, (arg, plan, f"file://{tmpdir / 'store'}"))
        base, iface = dict(os.environ), loopback_interface()
        command = rank_command(call_path, tmpdir)
        logs = [tmpdir / f"rank-{rank}.log" for rank in range(plan.nproc)]
        group = _Group()
        try:
            for rank in range(plan.nproc):
                group.start(rank, command, rank_env(plan, rank, base, iface=iface), logs[rank])
            if not group.wait(timeout):
                return WorkerResult(ok=False, error=f"ranks timed out after {timeout:.0f} s",
                                    detail=process.tail(logs[0]), returncode=-signal.SIGKILL)
        except BaseException:
            group.stop(STOP_GRACE_S)  # Ctrl-C or SIGTERM here: stop the ranks, then propagate
            raise
        finally:
            group.kill()
        return _result(tmpdir, logs, group.returncodes, group.stopped)


def _result(tmpdir: Path, logs: list[Path], returncodes: dict[int, int], stopped: set[int]) -> WorkerResult:
    """What the ranks answered, as one result (see :func:`run_ranks`). ``stopped``: the ranks
    the parent signalled itself (their end is a consequence, not a cause)."""
    answers = {rank: a for rank in range(len(logs))
               if (a := process.read_answer(tmpdir / f"answer-{rank}.pkl")) is not None}
    failed = [rank for rank, code in returncodes.items() if code != 0]
    returncode = returncodes[failed[0]] if failed else 0
    value = answers.get(0, ("", None, ""))[1]
    if getattr(value, "status", None) == "interrupted":
        return WorkerResult(ok=True, value=value, returncode=returncode)  # its finished part
    # A rank that died by itself without answering (killed by the kernel's OOM killer, a
    # crash in native code) is the cause: the others' errors follow from it.
    crashed = [r for r, code in returncodes.items() if code != 0 and r not in answers and r not in stopped]
    if crashed:
        rank = crashed[0]
        return WorkerResult(ok=False, error=f"rank {rank} died ({process.died(returncodes[rank])}) before answering",
                            detail=process.tail(logs[rank]), returncode=returncodes[rank])
    # The rank that failed first, not the lowest: the others' errors (a peer that closed
    # its connection) follow from it.
    errors = sorted((_written_ns(tmpdir / f"answer-{rank}.pkl"), rank) for rank, a in answers.items() if a[0] == "error")
    if errors:
        rank = errors[0][1]
        _, payload, detail = answers[rank]
        return WorkerResult(ok=False, error=f"rank {rank}: {payload}", detail=detail, returncode=returncode)
    if 0 in answers:
        return WorkerResult(ok=True, value=value, returncode=returncode)
    rank = next((r for r in failed if r not in answers), failed[0] if failed else 0)
    code = returncodes.get(rank, 0)
    return WorkerResult(ok=False, error=f"rank {rank} ended ({process.died(code)}) before answering",
                        detail=process.tail(logs[rank]), returncode=code)


def _written_ns(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


class _Group:
    """The rank processes of one launch, each waited for in its own thread (blocked in
    ``waitpid``); the main thread blocks on the queue of ranks that ended, in the order
    they ended."""

    def __init__(self) -> None:
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.returncodes: dict[int, int] = {}  # in the order the ranks ended
        self.stopped: set[int] = set()
        self._ended: queue.Queue[int] = queue.Queue()

    def start(self, rank: int, command: list[str], env: dict[str, str], log_path: Path) -> None:
        with log_path.open("wb") as log:
            # Rank 0 draws the progress on the parent's terminal; the others' stderr is logged.
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=None if rank == 0 else subprocess.STDOUT, env=env)
        self.procs[rank] = proc
        threading.Thread(target=self._wait_one, args=(rank, proc), daemon=True,
                         name=f"devicebench-rank-{rank}").start()

    def _wait_one(self, rank: int, proc: subprocess.Popen[bytes]) -> None:
        proc.wait()
        self._ended.put(rank)

    def _collect(self, deadline: float | None) -> bool:
        """Block until the next rank ends (True) or ``deadline`` passes (False)."""
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return False
        try:
            rank = self._ended.get(timeout=left)
        except queue.Empty:
            return False
        self.returncodes[rank] = self.procs[rank].returncode
        return True

    def _running_ranks(self) -> list[int]:
        return [r for r in self.procs if r not in self.returncodes]

    def _running(self) -> list[subprocess.Popen[bytes]]:
        return [self.procs[r] for r in self._running_ranks()]

    def wait(self, timeout: float | None) -> bool:
        """Wait for every rank; False when ``timeout`` passed first (then all are killed)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._running():
            if not self._collect(deadline):
                self.kill()
                return False
            if any(code != 0 for code in self.returncodes.values()) and self._running():
                # One rank failed: the others may wait for it forever in a collective.
                grace = time.monotonic() + FAIL_GRACE_S
                while self._running() and self._collect(grace if deadline is None else min(grace, deadline)):
                    pass
                self.stop(STOP_GRACE_S)
        return True

    def stop(self, grace_s: float) -> None:
        """SIGTERM every running rank, wait up to ``grace_s`` for them, then SIGKILL."""
        for rank in self._running_ranks():
            self.stopped.add(rank)
            _signal(self.procs[rank], signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while self._running() and self._collect(deadline):
            pass
        self.kill()

    def kill(self) -> None:
        """SIGKILL every running rank and reap it (the waiting threads end with them)."""
        for rank in self._running_ranks():
            self.stopped.add(rank)
            _signal(self.procs[rank], signal.SIGKILL)
        while self._running():
            self._collect(None)


def _signal(proc: subprocess.Popen[bytes], signum: int) -> None:
    try:
        proc.send_signal(signum)
    except ProcessLookupError:
        pass  # it ended meanwhile; its thread reports it




def _rank_main(argv: list[str]) -> int:
    """One rank: pin its GPU, join the group, run the call, write the answer, leave."""
    import torch
    import torch.distributed as dist

    call_path, outdir = Path(argv[0]), Path(argv[1])
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])

    def call() -> Any:
        func, (arg, plan, store_url) = process.read_call(call_path)
        if plan.device_type == "cuda":
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        torch.set_num_threads(plan.threads_per_rank)
        # A file store: the rendezvous opens no socket.
        dist.init_process_group(plan.backend, init_method=store_url, rank=rank, world_size=world)
        return func(arg)

    result = process.answer(call)
    process.write_answer(outdir / f"answer-{rank}.pkl", result)
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0 if result[0] == "ok" else 1


if __name__ == "__main__":
    process.die_with_parent()
    sys.exit(_rank_main(sys.argv[1:]))
