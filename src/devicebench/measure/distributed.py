"""Data-parallel training on one machine: N processes launched through torchrun, one DDP run.

The parent (:func:`train_distributed`) starts ``python -m torch.distributed.run --standalone
--nproc_per_node N -m devicebench.measure.distributed CALL OUTDIR`` and blocks in ``waitpid``
until it ends. torchrun's agent starts the N ranks; each rank (this module's ``__main__``)
joins the process group (``nccl`` on CUDA, one GPU per local rank; ``gloo`` on the CPU, with
``max(1, cores // N)`` threads each so that the ranks do not oversubscribe the cores) and runs
the ordinary training loop, :func:`~devicebench.measure.training.train_on_device`, on its
:class:`~devicebench.measure.training.Shard` of the data. Every rank writes its answer
(rank 0: the record) into OUTDIR, as a worker of :mod:`devicebench.measure.worker` does.

Scaling efficiency (:func:`scaling_of`) is throughput(N) / (N x throughput(1)), each the
median over epochs of the training samples per second (validation excluded), with the same
per-process batch: 1.0 means N processes did N times the work of one in the same time.
"""

from __future__ import annotations

import os
import pickle
import signal
import statistics
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from devicebench.errors import ConfigError
from devicebench.measure.training import Shard, TrainConfig, train_on_device
from devicebench.measure.worker import WorkerResult
from devicebench.results.records import TrainingRecord

__all__ = ["DistributedPlan", "plan_distributed", "usable_cores", "train_distributed", "Scaling", "scaling_of"]

#: torchrun's agent checks on its ranks this often (s). Its default, 0.1 s, wakes it ten
#: times a second beside the timed work; once a second is enough to notice a failed rank.
MONITOR_INTERVAL_S = 1


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


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


def plan_distributed(device_type: str, nproc: int, threads: int | None = None) -> DistributedPlan:
    """Check that ``nproc`` processes can train on ``device_type`` here, and lay them out.

    On the CPU each rank needs a core of its own (more ranks than cores would time the
    scheduler, not DDP), and gets ``max(1, cores // nproc)`` threads unless ``threads`` is
    given. On CUDA each rank needs a GPU of its own.

    Raises:
        ConfigError: ``nproc`` < 1, more ranks than cores or GPUs, or a device type that
            torch.distributed cannot serve here.
    """
    if nproc < 1:
        raise ConfigError(f"--nproc must be >= 1, got {nproc}")
    cores = usable_cores()
    if device_type == "cpu":
        if nproc > cores:
            raise ConfigError(f"--nproc {nproc} on the CPU needs {nproc} cores, this machine lets us use {cores}: "
                              "more ranks than cores would time the scheduler, not DDP")
        return DistributedPlan("cpu", nproc, "gloo", threads or max(1, cores // nproc))
    if device_type == "cuda":
        import torch

        gpus = torch.cuda.device_count()
        if nproc > gpus:
            raise ConfigError(f"--nproc {nproc} on CUDA needs one GPU per process, {gpus} found")
        import torch.distributed as dist

        if not dist.is_available() or not dist.is_nccl_available():
            raise ConfigError("--nproc on CUDA needs torch.distributed with NCCL, which this torch build lacks")
        return DistributedPlan("cuda", nproc, "nccl", threads or max(1, cores // nproc))
    raise ConfigError(f"--nproc supports the cpu (gloo) and cuda (nccl) devices, not {device_type}")


def train_distributed(config: TrainConfig, plan: DistributedPlan, *, timeout: float | None = None) -> WorkerResult:
    """Train ``config`` with ``plan.nproc`` DDP processes through torchrun; wait for them.

    The parent blocks in ``waitpid`` (no polling); a Ctrl-C here stops torchrun, which
    stops its ranks, and propagates. Rank 0's stdout/stderr are not captured: its progress
    bar shows on the terminal, as a single-process worker's does.

    Returns:
        A :class:`~devicebench.measure.worker.WorkerResult` whose value is rank 0's
        :class:`TrainingRecord`, or the first failing rank's error.
    """
    from devicebench.measure.worker import _tail

    with tempfile.TemporaryDirectory(prefix="devicebench-ddp-") as tmp:
        tmpdir = Path(tmp)
        call_path, log_path = tmpdir / "call.pkl", tmpdir / "torchrun.log"
        with call_path.open("wb") as fh:
            pickle.dump((config, plan), fh)
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        # Set here, torchrun does not force OMP_NUM_THREADS=1 on every rank.
        env["OMP_NUM_THREADS"] = str(plan.threads_per_rank)
        package_root = str(Path(__file__).resolve().parents[2])  # the ranks import this devicebench
        env["PYTHONPATH"] = package_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
                   "--nproc_per_node", str(plan.nproc), "--monitor-interval", str(MONITOR_INTERVAL_S),
                   "-m", "devicebench.measure.distributed", str(call_path), str(tmpdir)]
        with log_path.open("wb") as log:
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=None, env=env)
            try:
                returncode = proc.wait(timeout=timeout)  # blocks in waitpid: no polling
            except subprocess.TimeoutExpired:
                proc.terminate()
                proc.wait()
                return WorkerResult(ok=False, error=f"torchrun timed out after {timeout:.0f} s",
                                    detail=_tail(log_path), returncode=proc.returncode)
            except BaseException:
                if proc.poll() is None:  # Ctrl-C: torchrun forwards SIGTERM to its ranks
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(timeout=15)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
                raise
        answers = {}
        for rank in range(plan.nproc):
            path = tmpdir / f"answer-{rank}.pkl"
            if path.exists():
                with path.open("rb") as fh:
                    answers[rank] = pickle.load(fh)
        record = answers.get(0, ("", None, ""))[1]
        if isinstance(record, TrainingRecord) and record.status == "interrupted":
            return WorkerResult(ok=True, value=record, returncode=returncode)  # its finished epochs
        for rank, (status, payload, detail) in sorted(answers.items()):
            if status == "error":
                return WorkerResult(ok=False, error=f"rank {rank}: {payload}", detail=detail, returncode=returncode)
        if isinstance(record, TrainingRecord):
            return WorkerResult(ok=True, value=record, returncode=returncode)
        return WorkerResult(ok=False, error=f"torchrun ended (exit status {returncode}) before rank 0 answered",
                            detail=_tail(log_path), returncode=returncode)


# -- scaling efficiency -------------------------------------------------------------------
@dataclass(frozen=True)
class Scaling:
    """Throughput of N data-parallel processes against one process on the same device type.

    Attributes:
        nproc: number of processes.
        baseline_samples_per_s: one process, median over its epochs.
        samples_per_s: N processes together, median over their epochs.
        baseline_record_id: the single-process record compared with.
        baseline_threads: CPU threads the single process used.
        threads_per_rank: CPU threads each of the N processes used.
    """

    nproc: int
    baseline_samples_per_s: float
    samples_per_s: float
    baseline_record_id: str = ""
    baseline_threads: int | None = None
    threads_per_rank: int | None = None

    @property
    def speedup(self) -> float:
        return self.samples_per_s / self.baseline_samples_per_s

    @property
    def efficiency(self) -> float:
        """throughput(N) / (N x throughput(1)); 1.0 is perfect linear scaling."""
        return self.speedup / self.nproc

    def to_dict(self) -> dict[str, Any]:
        return {"nproc": self.nproc, "baseline_samples_per_s": self.baseline_samples_per_s,
                "samples_per_s": self.samples_per_s, "speedup": self.speedup, "efficiency": self.efficiency,
                "baseline_record_id": self.baseline_record_id, "baseline_threads": self.baseline_threads,
                "threads_per_rank": self.threads_per_rank,
                "measure": "median over epochs of training samples/s (validation excluded), same per-process batch"}


def scaling_of(baseline: TrainingRecord, record: TrainingRecord) -> Scaling | None:
    """The scaling of ``record`` (N processes) over ``baseline`` (one), or None when either
    has no epoch with a throughput."""
    def median_rate(r: TrainingRecord) -> float | None:
        rates = [e.samples_per_s for e in r.epochs if e.samples_per_s > 0]
        return statistics.median(rates) if rates else None

    base, rate = median_rate(baseline), median_rate(record)
    if base is None or rate is None:
        return None
    return Scaling(int(record.settings.get("nproc", 1)), base, rate, baseline.record_id,
                   baseline.settings.get("threads_used"), record.settings.get("threads_per_rank"))


# -- one rank (run by torchrun) -----------------------------------------------------------
def _rank_main(argv: list[str]) -> int:
    """One rank: join the group, train this rank's shard, write the answer, leave."""
    import torch
    import torch.distributed as dist

    call_path, outdir = Path(argv[0]), Path(argv[1])
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    record: TrainingRecord | None = None
    try:
        with call_path.open("rb") as fh:
            config, plan = pickle.load(fh)
        device = config.device
        if plan.device_type == "cuda":
            torch.cuda.set_device(local_rank)
            device = f"cuda:{local_rank}"
        dist.init_process_group(plan.backend)
        rank_config = replace(config, device=device, threads=plan.threads_per_rank,
                              progress=config.progress and rank == 0,
                              db=config.db if rank == 0 else None)
        record = train_on_device(rank_config, Shard(rank, plan.nproc, plan.backend))
        record.settings["threads_per_rank"] = plan.threads_per_rank
        # Rank 0 holds the complete record (an interrupted one keeps its finished epochs).
        answer: tuple[str, Any, str] = ("ok", record if rank == 0 else None, "")
    except BaseException as exc:  # noqa: BLE001 - report every failure to the parent
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        answer = ("error", f"{type(exc).__name__}: {first}", traceback.format_exc())
    tmp = outdir / f"answer-{rank}.tmp"
    with tmp.open("wb") as fh:
        pickle.dump(answer, fh)
    os.replace(tmp, outdir / f"answer-{rank}.pkl")
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0 if answer[0] == "ok" else 1


if __name__ == "__main__":
    sys.exit(_rank_main(sys.argv[1:]))
