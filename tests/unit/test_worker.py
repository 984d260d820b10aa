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

    for module in ("devicebench.launchers.worker", "devicebench.launchers.ranks"):
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


def test_ranks_start_without_torchrun_with_a_safe_path_and_loopback_transports(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`train --nproc` starts its ranks itself (torchrun's agent listened on every interface,
    and its rendezvous unpickles what it reads): ``python -P -m devicebench.launchers.ranks``,
    the rank's place in the environment, gloo and NCCL pinned to loopback whatever the user's
    environment says (issue 12 case 4)."""
    import sys
    from pathlib import Path

    from devicebench.launchers.ranks import (
        DistributedPlan,
        loopback_interface,
        rank_command,
        rank_env,
    )

    command = rank_command(Path(tmp_path / "call.pkl"), Path(tmp_path))
    assert command[:4] == [sys.executable, "-P", "-m", "devicebench.launchers.ranks"]
    assert not any("torch.distributed.run" in part or "torchrun" in part for part in command)
    assert loopback_interface() == "lo" or sys.platform != "linux"
    base = {"GLOO_SOCKET_IFNAME": "eth0", "NCCL_SOCKET_IFNAME": "eth0", "MASTER_ADDR": "10.0.0.1",
            "MASTER_PORT": "29500", "PYTHONPATH": "/elsewhere", "HOME": "/home/x"}
    env = rank_env(DistributedPlan("cpu", 2, "gloo", 3), 1, base, iface="lo")
    assert {k: env[k] for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "OMP_NUM_THREADS")} == \
        {"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2", "OMP_NUM_THREADS": "3"}
    assert (env["GLOO_SOCKET_IFNAME"], env["NCCL_SOCKET_IFNAME"], env["MASTER_ADDR"]) == ("lo", "=lo", "127.0.0.1")
    assert "MASTER_PORT" not in env and env["PYTHONSAFEPATH"] == "1" and env["HOME"] == "/home/x"
    assert env["PYTHONPATH"].endswith("/elsewhere") and env["PYTHONPATH"].split(":")[0].endswith("src")
    assert base["GLOO_SOCKET_IFNAME"] == "eth0"  # the parent's environment is left alone


def test_the_rank_group_waits_without_spinning_stops_the_rest_when_one_fails_and_kills_on_timeout(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """launchers/ranks.py's waiting, with plain processes standing in for ranks: the parent
    spends no CPU while they run; one failing gets the others stopped after the grace period;
    a timeout kills them all."""
    import resource
    import signal
    import sys
    import time

    from devicebench.launchers import ranks

    monkeypatch.setattr(ranks, "FAIL_GRACE_S", 0.3)
    sleep = [sys.executable, "-c", "import time; time.sleep(60)"]

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    group = ranks._Group()
    for rank, command in enumerate([[sys.executable, "-c", "import time; time.sleep(1.5); raise SystemExit(3)"], sleep]):
        group.start(rank, command, {}, tmp_path / f"rank-{rank}.log")
    start, used = time.monotonic(), cpu()
    assert group.wait(timeout=30)
    assert group.returncodes == {0: 3, 1: -signal.SIGTERM}
    assert time.monotonic() - start < 10
    assert cpu() - used < 0.2, "the parent spun while it waited"

    group = ranks._Group()
    for rank in range(2):
        group.start(rank, sleep, {}, tmp_path / f"t-{rank}.log")
    start = time.monotonic()
    assert not group.wait(timeout=0.5)
    assert group.returncodes == {0: -signal.SIGKILL, 1: -signal.SIGKILL}
    assert time.monotonic() - start < 10


def test_the_launch_reports_the_rank_that_failed_first(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Of several failing ranks, the cause is named: a rank that died by itself without
    answering (OOM killer, native crash), else the earliest error written; not the others'
    "connection closed" that follow from it, and not the ranks the launcher stopped itself."""
    import os
    import signal

    from devicebench.launchers import ranks
    from devicebench.launchers.process import write_answer

    logs = [tmp_path / f"rank-{r}.log" for r in range(3)]
    for log in logs:
        log.write_text(f"output of {log.stem}\n")

    def answer(rank: int, error: str, written_ns: int) -> None:
        path = tmp_path / f"answer-{rank}.pkl"
        write_answer(path, ("error", error, f"Traceback of rank {rank}"))
        os.utime(path, ns=(written_ns, written_ns))

    answer(0, "RuntimeError: Connection closed by peer", 2_000_000_000)
    answer(1, "ValueError: bad shard", 1_000_000_000)
    # Rank 2 was stopped by the launcher (SIGTERM): a consequence.
    result = ranks._result(tmp_path, logs, {1: 1, 0: 1, 2: -signal.SIGTERM}, stopped={2})
    assert (result.ok, result.error, result.detail) == (False, "rank 1: ValueError: bad shard", "Traceback of rank 1")
    # Rank 2 died by itself without answering: it is the cause.
    result = ranks._result(tmp_path, logs, {2: -signal.SIGKILL, 1: 1, 0: 1}, stopped=set())
    assert result.error == "rank 2 died (killed by signal 9 (SIGKILL)) before answering"
    assert result.detail == "output of rank-2\n" and result.returncode == -signal.SIGKILL
    # Every rank answered: rank 0's value is the launch's.
    for rank in range(3):
        write_answer(tmp_path / f"answer-{rank}.pkl", ("ok", "record" if rank == 0 else None, ""))
    result = ranks._result(tmp_path, logs, {0: 0, 1: 0, 2: 0}, stopped=set())
    assert (result.ok, result.value, result.returncode) == (True, "record", 0)
