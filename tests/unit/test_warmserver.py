"""The warm server: the fork server kept between commands (issue 14, point 2).

Each test has its own folder of sockets (so its own servers), stopped at the end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from devicebench.errors import ConfigError
from devicebench.launchers import forkserver, warmserver
from devicebench.launchers.worker import run_in_worker

from tests.unit.test_forkserver import _cwd, _leave_marks, _sleep

pytestmark = pytest.mark.skipif(forkserver.fork_unavailable_reason() is not None,
                                reason=f"fork server unavailable: {forkserver.fork_unavailable_reason()}")

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def warm(monkeypatch):
    """The warm launcher, with a folder of sockets of this test's own."""
    folder = tempfile.mkdtemp(prefix="dbw-", dir="/tmp")
    monkeypatch.setenv(warmserver.RUNTIME_ENV, folder + "/rt")
    monkeypatch.setenv(forkserver.LAUNCHER_ENV, "warm")
    monkeypatch.setenv(warmserver.IDLE_ENV, "120")
    yield Path(folder + "/rt")
    warmserver.stop_servers({warmserver.RUNTIME_ENV: folder + "/rt"})
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def _env_value(name: str) -> str | None:
    return os.environ.get(name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie of ours counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except OSError:
        return False


def test_a_second_command_reuses_the_warm_server_and_each_child_starts_clean(warm) -> None:
    with forkserver.session() as first:
        assert first is not None and first.warm is not None and first.warm["started"] is True
        a = run_in_worker(_leave_marks, "one")
        ready_a = first.wait_ready()
    with forkserver.session() as second:
        assert second is not None and second.warm is not None and second.warm["started"] is False
        start = time.monotonic()
        b = run_in_worker(_leave_marks, "two")
        took = time.monotonic() - start
        ready_b = second.wait_ready()
    assert a.ok and b.ok, (a.detail, b.detail)
    # One warm server, two sessions (two session servers), each child its own process.
    assert ready_a["warm"]["server"] == ready_b["warm"]["server"]
    assert ready_a["pid"] != ready_b["pid"] and a.value["pid"] != b.value["pid"]
    assert ready_b["warm"]["sessions_served"] == 1
    # What the first command's child changed, the second command's child does not see.
    assert b.value["flag_before"] == [] and b.value["env_before"] is None and b.value["modules_before"] is False
    assert b.value["grad_before"] is True and b.value["seed_draw"] == a.value["seed_draw"]
    assert b.value["threads_before"] == a.value["threads_before"]
    assert took < 5.0, f"a configuration on a warm server took {took:.1f} s to start and end"
    (server,) = warmserver.list_servers()
    assert server.pid == ready_a["warm"]["server"] and server.sessions_served == 2
    assert "torch" in server.loaded


def test_a_child_gets_the_callers_environment_and_folder(warm, tmp_path, monkeypatch) -> None:
    with forkserver.session() as server:
        assert server is not None and server.warm is not None
        server.wait_ready()
    # Another shell, another folder: variables that only name the shell differ, the server fits.
    monkeypatch.setenv("PWD", str(tmp_path))
    monkeypatch.setenv("SHLVL", "7")
    monkeypatch.chdir(tmp_path)
    with forkserver.session() as again:
        assert again is not None and again.warm is not None and again.warm["started"] is False
        folder = run_in_worker(_cwd, None)
        shlvl = run_in_worker(_env_value, "SHLVL")
        db = run_in_worker(_env_value, "DEVICEBENCH_DB")
    assert folder.value == str(tmp_path) and shlvl.value == "7" and db.value == os.environ["DEVICEBENCH_DB"]


def test_a_different_environment_or_placement_gets_another_server(warm, monkeypatch) -> None:
    env = forkserver.worker_env()
    key = warmserver.server_key(env)
    assert warmserver.server_key(dict(env, PWD="/elsewhere", SHLVL="9")) == key
    assert warmserver.server_key(dict(env, OMP_NUM_THREADS="1")) != key
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:
        cpus = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(cpus)})
        try:
            assert warmserver.server_key(env) != key  # `taskset -c 0 devicebench ...`
        finally:
            os.sched_setaffinity(0, cpus)
    with forkserver.session() as one:
        assert one is not None and one.warm is not None
        pid_one = one.wait_ready()["warm"]["server"]
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    with forkserver.session() as two:
        assert two is not None and two.warm is not None and two.warm["started"] is True
        pid_two = two.wait_ready()["warm"]["server"]
    assert pid_one != pid_two and len(warmserver.list_servers()) == 2


def test_edited_source_gets_another_server(tmp_path) -> None:
    package = tmp_path / "devicebench"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "module.py").write_text("A = 1\n")
    before = warmserver._code_fingerprint(str(package))
    (package / "module.py").write_text("A = 22\n")  # another size (and time)
    assert warmserver._code_fingerprint(str(package)) != before
    assert warmserver._code_fingerprint() != before
    # The key covers devicebench's own files: every one of them is in it.
    ours = {entry[0] for entry in warmserver._code_fingerprint()[1]}
    assert os.path.abspath(warmserver.__file__) in ours and os.path.abspath(forkserver.__file__) in ours


def test_a_folder_others_can_open_is_refused_and_a_command_uses_its_own_server(tmp_path, monkeypatch) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    os.chmod(shared, 0o777)
    link = tmp_path / "link"
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    link.symlink_to(private)
    for folder, words in ((shared, "other users"), (link, "not a folder")):
        with pytest.raises(warmserver.WarmUnavailable, match=words):
            warmserver.runtime_dir({warmserver.RUNTIME_ENV: str(folder)})
    monkeypatch.setenv(warmserver.RUNTIME_ENV, str(shared))
    monkeypatch.setenv(forkserver.LAUNCHER_ENV, "warm")
    with forkserver.session() as server:
        assert server is not None and server.warm is None  # this command's own, as with fork
        assert run_in_worker(_sleep, 0.0).ok
    assert not list(shared.iterdir())


def test_the_socket_folder_is_private_and_nothing_listens_on_a_network(warm) -> None:
    from tests.conftest import listening_sockets

    with forkserver.session() as server:
        assert server is not None and server.warm is not None
        server.wait_ready()
        sock = Path(server.warm["socket"])
        assert sock.parent == warm, (server.warm, os.environ.get(warmserver.RUNTIME_ENV))
        assert (warm.stat().st_mode & 0o777) == 0o700 and (sock.stat().st_mode & 0o077) == 0
        daemon = server.wait_ready()["warm"]["server"]
        import psutil

        conns = psutil.Process(daemon).net_connections(kind="inet")
        assert conns == [] and not [s for s in listening_sockets() if s[0] == daemon]


def test_a_session_for_another_key_is_refused(warm) -> None:
    with forkserver.session() as server:
        assert server is not None and server.warm is not None
        server.wait_ready()
        path = Path(server.warm["socket"])
    answer = warmserver._ask(path, {"session": True, "key": "0" * 64, "preload": []})
    assert answer is not None and "refused" in answer


_KILLED_CLIENT = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, {root!r})
    from devicebench.launchers import forkserver
    from devicebench.launchers.worker import run_in_worker

    def sleeper(path):
        with open(path, "w") as fh:
            fh.write(str(os.getpid()))
        time.sleep(60)

    if __name__ == "__main__":
        with forkserver.session():
            run_in_worker(sleeper, sys.argv[1])
""")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM])
def test_a_command_killed_or_interrupted_stops_its_configuration_not_the_server(warm, tmp_path, sig) -> None:
    # kill -9: the session server sees the connection close; Ctrl-C (which reaches only the
    # command: the child is in the server's session, not the terminal's process group) and
    # SIGTERM: the command stops the child itself.
    script = tmp_path / "client.py"
    script.write_text(_KILLED_CLIENT.format(root=str(ROOT)))
    pid_file = tmp_path / "child.pid"
    client = subprocess.Popen([sys.executable, str(script), str(pid_file)], env=dict(os.environ))
    deadline = time.monotonic() + 120
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline and client.poll() is None, "the child never started"
        time.sleep(0.1)
    child = int(pid_file.read_text())
    assert _alive(child)
    client.send_signal(sig)
    client.wait(timeout=30)
    deadline = time.monotonic() + 15
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child), "the configuration outlived its command"
    (server,) = warmserver.list_servers()  # the warm server itself stays for the next command
    assert server.sessions_served == 1


def test_an_idle_server_exits_and_removes_its_socket(warm, monkeypatch) -> None:
    monkeypatch.setenv(warmserver.IDLE_ENV, "1")
    with forkserver.session() as server:
        assert server is not None and server.warm is not None
        daemon = server.wait_ready()["warm"]["server"]
        sock = Path(server.warm["socket"])
        time.sleep(2.0)  # a session in progress keeps it, however long
        assert run_in_worker(_sleep, 0.0).ok
    deadline = time.monotonic() + 20
    while sock.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not sock.exists() and warmserver.list_servers() == []
    deadline = time.monotonic() + 5
    while _alive(daemon) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(daemon)


_RACE = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from devicebench.launchers import forkserver
    from devicebench.launchers.worker import run_in_worker

    def pid(_):
        import os
        return os.getpid()

    if __name__ == "__main__":
        with forkserver.session() as server:
            result = run_in_worker(pid, None)
            print(server.warm is not None and result.ok, server.wait_ready()["warm"]["server"])
""")


def test_two_commands_starting_at_once_share_one_server(warm, tmp_path) -> None:
    script = tmp_path / "race.py"
    script.write_text(_RACE.format(root=str(ROOT)))
    procs = [subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=dict(os.environ))
             for _ in range(2)]
    outputs = [p.communicate(timeout=240)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    assert [o[0] for o in outputs] == ["True", "True"] and outputs[0][1] == outputs[1][1], outputs
    assert len(warmserver.list_servers()) == 1


def test_stop_ends_every_server_and_bad_settings_are_one_line_errors(warm, monkeypatch) -> None:
    with forkserver.session() as server:
        assert server is not None and server.warm is not None
        daemon = server.wait_ready()["warm"]["server"]
    assert warmserver.stop_servers() == [daemon]
    assert warmserver.list_servers() == []
    monkeypatch.setenv(warmserver.IDLE_ENV, "ten minutes")
    with pytest.raises(ConfigError, match="DEVICEBENCH_SERVER_IDLE_S"):
        forkserver.launcher_mode()
    monkeypatch.setenv(warmserver.IDLE_ENV, "0")
    assert forkserver.launcher_mode() == "fork"
    monkeypatch.setenv(forkserver.LAUNCHER_ENV, "daemon")
    with pytest.raises(ConfigError, match="warm, fork, spawn"):
        forkserver.launcher_mode()


_PARENT_MODULES = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from devicebench.cli import main
    code = main(sys.argv[1:])
    print("PARENT-TORCH", "torch" in sys.modules, code)
""")


def test_on_a_warm_server_the_commands_parent_never_imports_torch(warm, tmp_path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(_PARENT_MODULES.format(root=str(ROOT)))
    args = ["infer", "tinycnn-tiny", "--device", "all", "--batch-size", "1", "--quick", "--max-time", "0.2",
            "--no-db", "--json", str(tmp_path / "out.json")]
    seen = []
    for _ in range(2):  # the first starts the server (the parent may import torch meanwhile)
        done = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=300,
                              env=dict(os.environ), cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
        seen.append(done.stdout.split("PARENT-TORCH")[-1].split())
    assert seen[1] == ["False", "0"], seen
    records = json.loads((tmp_path / "out.json").read_text())["records"]
    assert records and records[0]["status"] == "ok" and records[0]["environment"]["torch"]


def test_an_idle_server_imports_what_commands_asked_for_and_draws_the_next_report(warm, monkeypatch) -> None:
    from devicebench.cli import results as cli_results
    from devicebench.reports import html as html_report
    from devicebench.results.records import RunInfo

    with forkserver.session() as first:
        assert first is not None and first.warm is not None
        first.wait_ready()
        first.close()
    # A command that asks for the report's modules "when idle": imported once it ended.
    with forkserver.running_warm_session() as server:
        assert server is not None
        assert "matplotlib.figure" not in server.wait_ready()["loaded"]
    sock, _ = warmserver.connect(forkserver.comparable_env(forkserver.worker_env()), forkserver.PRELOAD,
                                 idle_preload=cli_results.REPORT_PRELOAD)
    sock.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        (info,) = warmserver.list_servers()
        if "matplotlib.figure" in info.loaded and info.sessions_active == 0:
            break
        time.sleep(0.2)
    assert "matplotlib.figure" in info.loaded
    # This process has not imported matplotlib: the report is drawn by a child of the server.
    monkeypatch.delitem(sys.modules, "matplotlib.figure", raising=False)
    monkeypatch.setattr(html_report, "render_html", lambda *a, **k: pytest.fail("drawn in the parent"))
    from tests.unit.test_store import _record

    run = RunInfo(run_id="warm-report", command="devicebench run --quick", status="complete")
    records = [_record("warm-report", 10.0), _record("warm-report", 12.0, model="tinycnn")]
    page = cli_results._render_html(run, records, [], None)
    assert "warm-report" in page and "<svg" in page and "tinycnn-tiny" in page


def test_running_warm_session_never_starts_a_server(warm) -> None:
    with forkserver.running_warm_session() as server:
        assert server is None
    assert warmserver.list_servers() == []


def test_at_most_three_servers_the_longest_idle_makes_room(warm, monkeypatch) -> None:
    pids = []
    for threads in ("1", "2", "3", "4"):
        monkeypatch.setenv("OMP_NUM_THREADS", threads)
        with forkserver.session() as server:
            assert server is not None and server.warm is not None and server.warm["started"] is True
            pids.append(server.wait_ready()["warm"]["server"])
        time.sleep(0.3)  # so that idle times differ
    running = {s.pid for s in warmserver.list_servers()}
    assert len(running) == warmserver.MAX_SERVERS == 3
    assert running == set(pids[1:]), (pids, running)  # the first, idle longest, made room


def _parents(_: object) -> tuple[int, int]:
    """This process's parent and the parent's parent."""
    parent = os.getppid()
    grandparent = int(Path(f"/proc/{parent}/stat").read_text().rsplit(") ", 1)[1].split()[1])
    return parent, grandparent


def test_outside_a_session_a_worker_uses_a_running_warm_server_and_never_starts_one(warm) -> None:
    alone = run_in_worker(_parents, None)  # none runs: a spawned interpreter, none started
    assert alone.ok and alone.value[0] == os.getpid() and warmserver.list_servers() == []
    with forkserver.session() as server:
        assert server is not None and server.warm is not None
        daemon = server.wait_ready()["warm"]["server"]
    forked = run_in_worker(_parents, None)  # train, serve, llm...: forked from the warm one
    assert forked.ok and forked.value[0] != os.getpid() and forked.value[1] == daemon, (forked.value, daemon)


def test_the_server_command_lists_and_stops_them(warm) -> None:
    def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "devicebench", "server", *args], capture_output=True, text=True,
                              timeout=60, env={**os.environ, "COLUMNS": "80", **env}, check=False)

    assert cli().stdout.strip() == "no warm server is running"
    with forkserver.session() as server:
        assert server is not None and server.warm is not None
        daemon = server.wait_ready()["warm"]["server"]
    shown = cli("status")
    assert shown.returncode == 0 and str(daemon) in shown.stdout and "MiB" in shown.stdout and "torch" in shown.stdout
    assert max(len(line) for line in shown.stdout.splitlines()) <= 80
    stopped = cli("stop")
    assert stopped.returncode == 0 and stopped.stdout.strip() == f"stopped 1 warm server(s): pid {daemon}"
    assert warmserver.list_servers() == []
    assert "spawned" in cli(DEVICEBENCH_LAUNCHER="spawn").stdout
    bad = cli(DEVICEBENCH_SERVER_IDLE_S="soon")
    assert bad.returncode == 2 and bad.stderr.startswith("devicebench: error: DEVICEBENCH_SERVER_IDLE_S")


def test_a_server_that_cannot_start_leaves_the_command_its_own(warm, monkeypatch) -> None:
    def fail(*args: object, **kwargs: object) -> str:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(warmserver, "_start", fail)
    with forkserver.session() as server:
        assert server is not None and server.warm is None  # a fork server of this command's own
        assert run_in_worker(_sleep, 0.0).ok


def _gc_view(_: object) -> tuple[int, int]:
    import gc

    return gc.get_freeze_count(), len(gc.get_objects())


@pytest.mark.parametrize("launcher", ["warm", "fork"])
def test_a_childs_collections_never_walk_the_servers_imports(warm, monkeypatch, launcher) -> None:
    monkeypatch.setenv(forkserver.LAUNCHER_ENV, launcher)
    with forkserver.session() as server:
        assert server is not None
        frozen, tracked = run_in_worker(_gc_view, None).value
    assert frozen > 100_000 and tracked < 20_000, (frozen, tracked)  # torch alone makes ~300,000
