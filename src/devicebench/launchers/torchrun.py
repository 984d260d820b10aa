"""N processes on one machine through torchrun: one data-parallel launch, waited for once.

The parent (:func:`run_torchrun`) starts ``python -P -m torch.distributed.run --nproc_per_node N
-m devicebench.launchers.torchrun CALL OUTDIR`` (rendezvous through a private file, loopback
addresses: :func:`torchrun_command`) and blocks in ``waitpid``
until it ends (:func:`~devicebench.launchers.process.spawn_and_wait`). torchrun's agent starts
the N ranks; each rank (this module's ``__main__``) pins its GPU (CUDA: one per local rank),
joins the process group (``nccl`` on CUDA, ``gloo`` on the CPU) with ``threads_per_rank``
intra-op threads, calls the function written in CALL and writes its answer into OUTDIR, as a
worker of :mod:`devicebench.launchers.worker` does. Rank 0's answer is the launch's value.

What the function does (train a shard, say) is its own business: this module knows nothing
of training.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devicebench.launchers import process
from devicebench.launchers.process import WorkerResult

__all__ = ["DistributedPlan", "run_torchrun", "torchrun_command", "MONITOR_INTERVAL_S"]

#: torchrun's agent checks on its ranks this often (s). Its default, 0.1 s, wakes it ten
#: times a second beside the timed work; once a second is enough to notice a failed rank.
MONITOR_INTERVAL_S = 1


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


def run_torchrun(func: Callable[[Any], Any], arg: Any, plan: DistributedPlan, *,
                 timeout: float | None = None) -> WorkerResult:
    """Call ``func(arg)`` in each of ``plan.nproc`` ranks started by torchrun; wait for them.

    The parent blocks in ``waitpid`` (no polling); a Ctrl-C here stops torchrun, which
    stops its ranks, and propagates. The ranks' stderr is not captured: rank 0's progress
    shows on the terminal, as a single-process worker's does.

    Returns:
        A :class:`WorkerResult` whose value is rank 0's return value, or the first failing
        rank's error (rank 0's value wins when it returned one marked ``interrupted``).
    """
    with process.private_tempdir("ddp") as tmpdir:
        call_path, log_path = tmpdir / "call.pkl", tmpdir / "torchrun.log"
        process.write_call(call_path, func, (arg, plan))
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        # Set here, torchrun does not force OMP_NUM_THREADS=1 on every rank.
        env["OMP_NUM_THREADS"] = str(plan.threads_per_rank)
        package_root = str(Path(__file__).resolve().parents[2])  # the ranks import this devicebench
        env["PYTHONPATH"] = package_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env["PYTHONSAFEPATH"] = "1"  # the ranks too: no module of the current folder is imported
        command = torchrun_command(plan, call_path, tmpdir)
        # torchrun forwards SIGTERM to its ranks: give them time to stop cleanly.
        returncode = process.spawn_and_wait(command, log_path=log_path, env=env, timeout=timeout,
                                    stderr_to_log=False, stop_grace_s=15.0)
        if returncode is None:
            return WorkerResult(ok=False, error=f"torchrun timed out after {timeout:.0f} s",
                                detail=process.tail(log_path), returncode=-signal.SIGKILL)
        answers = {rank: a for rank in range(plan.nproc)
                   if (a := process.read_answer(tmpdir / f"answer-{rank}.pkl")) is not None}
        value = answers.get(0, ("", None, ""))[1]
        if getattr(value, "status", None) == "interrupted":
            return WorkerResult(ok=True, value=value, returncode=returncode)  # its finished part
        for rank, (status, payload, detail) in sorted(answers.items()):
            if status == "error":
                return WorkerResult(ok=False, error=f"rank {rank}: {payload}", detail=detail, returncode=returncode)
        if 0 in answers:
            return WorkerResult(ok=True, value=value, returncode=returncode)
        return WorkerResult(ok=False, error=f"torchrun ended (exit status {returncode}) before rank 0 answered",
                            detail=process.tail(log_path), returncode=returncode)


def torchrun_command(plan: DistributedPlan, call_path: Path, tmpdir: Path) -> list[str]:
    """The torchrun command line of one single-node launch.

    Not ``--standalone``: that puts the rendezvous in a TCP store listening on every network
    interface, and torch's rendezvous unpickles the state it reads from that store. Here the
    rendezvous state lives in a file store inside the private temporary folder (no socket at
    all), and the addresses the ranks publish are loopback ones. ``-P`` (and
    ``PYTHONSAFEPATH`` in the environment, for the ranks) keeps the current folder off
    ``sys.path``. Multi-node launches are not supported (docs/training.md).
    """
    return [sys.executable, "-P", "-m", "torch.distributed.run", "--nnodes", "1",
            "--nproc_per_node", str(plan.nproc), "--rdzv-backend", "c10d",
            "--rdzv-endpoint", str(tmpdir / "rendezvous"), "--rdzv-conf", "store_type=file",
            "--rdzv-id", tmpdir.name, "--local-addr", "127.0.0.1", "--master-addr", "127.0.0.1",
            "--monitor-interval", str(MONITOR_INTERVAL_S),
            "-m", "devicebench.launchers.torchrun", str(call_path), str(tmpdir)]


def _rank_main(argv: list[str]) -> int:
    """One rank: pin its GPU, join the group, run the call, write the answer, leave."""
    import torch
    import torch.distributed as dist

    call_path, outdir = Path(argv[0]), Path(argv[1])
    rank = int(os.environ["RANK"])

    def call() -> Any:
        func, (arg, plan) = process.read_call(call_path)
        if plan.device_type == "cuda":
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        torch.set_num_threads(plan.threads_per_rank)
        dist.init_process_group(plan.backend)
        return func(arg)

    result = process.answer(call)
    process.write_answer(outdir / f"answer-{rank}.pkl", result)
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0 if result[0] == "ok" else 1


if __name__ == "__main__":
    sys.exit(_rank_main(sys.argv[1:]))
