"""The fork server: a fresh process per configuration without a new interpreter each time,
and nothing that one child does is seen by the next (issue 14, point 2)."""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from devicebench.launchers import forkserver
from devicebench.launchers.worker import run_in_worker

pytestmark = pytest.mark.skipif(forkserver.fork_unavailable_reason() is not None,
                                reason=f"fork server unavailable: {forkserver.fork_unavailable_reason()}")

#: Set by a child; a later child must not see it (module state does not travel back).
FLAG: list[str] = []


def _leave_marks(tag: str) -> dict:
    """Change every kind of process state a configuration could leave behind."""
    import torch

    seen = {"pid": os.getpid(), "flag_before": list(FLAG), "threads_before": torch.get_num_threads(),
            "env_before": os.environ.get("DEVICEBENCH_TEST_MARK"), "grad_before": torch.is_grad_enabled(),
            "seed_draw": float(torch.rand(1)), "cwd_before": os.getcwd(),
            "modules_before": "devicebench_test_marker" in sys.modules}
    FLAG.append(tag)
    torch.set_num_threads(1)
    torch.manual_seed(1234)
    torch.set_grad_enabled(False)
    os.environ["DEVICEBENCH_TEST_MARK"] = tag
    sys.modules["devicebench_test_marker"] = sys  # any module-level registration
    torch.ones(64, 64) @ torch.ones(64, 64)  # start the intra-op pool in this child
    return seen


def _sleep(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def _cwd(_: object) -> str:
    return os.getcwd()


def _fail(_: object) -> None:
    raise ValueError("bad value in a forked worker")


def _die(_: object) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _report(n: int) -> int:
    from devicebench.measure import progress

    reporter = progress.installed()
    assert reporter is not None, "no reporter installed in the worker"
    for i in range(n):
        time.sleep(0.35)
        progress.report(lambda i=i: progress.Progress("measure", i, 0.35 * i))
    return reporter.sent


def test_each_child_starts_clean_and_leaves_nothing_behind() -> None:
    with forkserver.session() as server:
        assert server is not None
        first = run_in_worker(_leave_marks, "one")
        second = run_in_worker(_leave_marks, "two")
        ready = server.wait_ready()
    assert first.ok and second.ok, (first.error, first.detail, second.error, second.detail)
    a, b = first.value, second.value
    assert a["pid"] != b["pid"] != os.getpid() and ready["pid"] not in (a["pid"], b["pid"])
    # What child one changed, child two does not see: module state, thread count, env,
    # autograd mode, the RNG (child two draws what child one drew before seeding), modules.
    assert b["flag_before"] == [] and b["env_before"] is None and b["modules_before"] is False
    assert b["threads_before"] == a["threads_before"] and (a["threads_before"] != 1 or os.cpu_count() == 1)
    assert b["grad_before"] is True and b["seed_draw"] == a["seed_draw"]
    assert FLAG == []  # nor does the parent
    assert "torch" in ready["loaded"]


def test_the_server_starts_with_a_safe_import_path(tmp_path, monkeypatch) -> None:
    # A file named like a module in the current folder must not shadow it in the server.
    (tmp_path / "torch.py").write_text("raise SystemExit('the current folder was on sys.path')\n")
    monkeypatch.chdir(tmp_path)
    with forkserver.session() as server:
        assert server is not None
        ready = server.wait_ready()
        result = run_in_worker(_sleep, 0.0)
    assert "torch" in ready["loaded"] and result.ok, result.detail


def test_a_child_runs_in_the_callers_current_folder(tmp_path, monkeypatch) -> None:
    with forkserver.session() as server:
        assert server is not None
        server.wait_ready()
        monkeypatch.chdir(tmp_path)  # after the server started elsewhere
        result = run_in_worker(_cwd, None)
    assert result.ok and result.value == str(tmp_path)


def test_failures_and_crashes_in_a_forked_child_are_reported() -> None:
    with forkserver.session():
        failed = run_in_worker(_fail, None)
        crashed = run_in_worker(_die, None)
        after = run_in_worker(_sleep, 0.0)  # the server survives both
    assert failed.error == "ValueError: bad value in a forked worker" and "Traceback" in failed.detail
    assert "SIGKILL" in crashed.error and crashed.returncode == -signal.SIGKILL
    assert after.ok


def test_a_timeout_kills_the_forked_child() -> None:
    with forkserver.session() as server:
        assert server is not None
        server.wait_ready()
        start = time.monotonic()
        result = run_in_worker(_sleep, 30.0, timeout=1.0)
    assert not result.ok and "timed out" in result.error
    assert time.monotonic() - start < 20


def test_a_child_is_much_cheaper_than_a_new_interpreter() -> None:
    with forkserver.session() as server:
        assert server is not None
        server.wait_ready()
        start = time.monotonic()
        for _ in range(3):
            assert run_in_worker(_sleep, 0.0).ok
        per_child = (time.monotonic() - start) / 3
    assert per_child < 1.0, f"{per_child:.2f} s per forked child"


def test_progress_comes_over_the_pipe_from_forked_and_spawned_workers(monkeypatch) -> None:
    for launcher in ("fork", "spawn"):
        monkeypatch.setenv(forkserver.LAUNCHER_ENV, launcher)
        lines: list[str] = []
        with forkserver.session() as server:
            assert (server is None) == (launcher == "spawn")
            result = run_in_worker(_report, 8, on_progress=lines.append)
        assert result.ok, result.detail
        # ~2.8 s of work, at most one report a second: 2 or 3 arrive, each one JSON line.
        assert 2 <= len(lines) == result.value <= 3, (launcher, lines)
        assert all(line.startswith("{") and '"phase": "measure"' in line for line in lines)


def test_spawn_is_used_where_fork_is_not_safe(monkeypatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert forkserver.fork_unavailable_reason() is not None
    with forkserver.session() as server:
        assert server is None
        result = run_in_worker(_sleep, 0.0)
    assert result.ok and result.value != os.getpid()


def test_a_server_with_cuda_initialised_refuses_to_fork(monkeypatch) -> None:
    # The refusal rule, checked without a GPU: CUDA initialised, or threads started.
    import torch

    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    assert "CUDA" in (forkserver.refusal(baseline_threads=99) or "")
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    assert forkserver.refusal(baseline_threads=0) is not None  # more threads than at start
    assert forkserver.refusal(baseline_threads=10_000) is None


def test_a_changed_environment_gets_a_spawned_worker(monkeypatch) -> None:
    # torch reads some variables at import (OMP_NUM_THREADS...): a call with another
    # environment than the server's must not run in its children.
    with forkserver.session() as server:
        assert server is not None
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert not server.fits(forkserver.worker_env())
        result = run_in_worker(_sleep, 0.0)
    assert result.ok


def test_the_run_commands_parent_imports_no_torch_before_its_server_starts() -> None:
    # The server's torch import is the longest wait of a run: it must start first, not
    # after the parent has imported torch itself (run.context once pulled it in through
    # results.llm, run.inference through the model-file readers: 3 s on 2 cores).
    import subprocess

    code = ("import sys, devicebench.cli, devicebench.cli.inference, devicebench.run.inference, "
            "devicebench.run.context, devicebench.launchers.forkserver, devicebench.workloads.registry; "
            "print(sorted(m for m in ('torch', 'numpy', 'transformers', 'torchvision') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_the_parent_imports_its_report_only_while_the_server_starts(monkeypatch) -> None:
    from devicebench.cli.inference import import_while_the_server_starts

    assert not forkserver.starting()  # no server at all: nothing to wait for, nothing imported
    assert import_while_the_server_starts(["json"]) == []
    forkserver.prestart()
    try:
        assert forkserver.starting()  # importing torch takes longer than this line
        assert import_while_the_server_starts(["json", "devicebench_no_such_module"]) == ["json"]
        forkserver._EARLY.wait_ready()
        assert not forkserver.starting()
        assert import_while_the_server_starts(["json"]) == []  # ready: a child may start, import nothing
    finally:
        forkserver._close_early()
