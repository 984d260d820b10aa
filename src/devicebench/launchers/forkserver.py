"""A fresh process per configuration without paying Python's and torch's start each time.

A fork server is a Python process, started once per run with a safe import path
(``python -P -m devicebench.launchers.forkserver``: neither the current folder nor a
script's folder is on ``sys.path``), that imports torch and devicebench's measuring modules
and then does nothing but wait. For each configuration it ``fork()``s a child that runs the
call exactly as a freshly spawned worker does (the same call and answer files, the same log),
and reports the child's exit status. The server itself never runs a torch operation, never
touches a device and starts no thread pool, so each child starts as clean as a new
interpreter that has just imported torch: its own pid, its own thread pools (created on first
use, in the child), its own CUDA context, and nothing that an earlier child did.

The parent (:class:`ForkServer`) talks to the server over a Unix socket pair; file
descriptors for the child's log, stderr and progress pipe travel with each request
(``SCM_RIGHTS``). The parent blocks in ``select`` on that socket and the progress pipe, so
it takes no CPU while a child measures. Ctrl-C or SIGTERM in the parent sends the child
SIGTERM (SIGKILL after a grace period) and stops the server; if the parent is killed
outright, the server dies with it (``PR_SET_PDEATHSIG``) and each child with the server.

Fork is used only where it is safe: Linux, a server without CUDA initialised and with no
more threads than its imports left (BLAS pools: numpy's, and scipy's once transformers'
BERT code is imported; OpenBLAS stops them around a fork). Elsewhere,
or when ``DEVICEBENCH_LAUNCHER=spawn`` asks for it (the benchmark of the overhead compares
both), each configuration is a plainly spawned interpreter
(:func:`~devicebench.launchers.process.spawn_and_wait`).

The server's imports are the largest part of what a run costs beyond measuring (torch, then
the models' libraries: seconds), so a command starts it first (:func:`prestart`, before it
imports torch itself) and may use the wait for its own imports (:func:`starting`).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from devicebench.launchers.process import ProgressPipe

__all__ = ["ForkServer", "ForkUnavailable", "session", "prestart", "starting", "active", "fork_unavailable_reason",
           "launcher_mode", "comparable_env", "warm_ready", "early", "running_warm_session", "LAUNCHER_ENV", "PRELOAD", "VOLATILE_ENV"]

#: ``spawn`` forces a plainly spawned interpreter per configuration; ``fork`` a fork server
#: started and stopped with each command; ``warm`` (the default where fork is safe) the
#: warm server kept between commands (:mod:`.warmserver`).
LAUNCHER_ENV = "DEVICEBENCH_LAUNCHER"
LAUNCHERS = ("warm", "fork", "spawn")
#: Modules the server always imports before it forks anything; a run adds those its models'
#: builders need (``ModelEntry.preload``). A module that is not installed is skipped.
PRELOAD = ("torch", "devicebench.workloads.nets", "devicebench.measure.inference", "devicebench.launchers.worker")
#: Environment variables that may differ between calls without making the server unfit: who
#: the parent is, what only the parent reads (the results database; the test runner's name
#: for the current test) and what only names the shell it runs in. A child still gets the
#: caller's values of these (its whole environment travels with each request).
VOLATILE_ENV = ("DEVICEBENCH_WORKER_PARENT", "DEVICEBENCH_PROGRESS_FD", "DEVICEBENCH_DB", "PYTEST_CURRENT_TEST",
                "PWD", "OLDPWD", "SHLVL", "_", "COLUMNS", "LINES")
_MAX_MESSAGE = 1 << 16
#: While the server imports, a CUDA availability check (by any library) asks NVML rather than
#: initialising the CUDA driver, which a forked child could not use; children get the
#: variable back as the parent had it.
NVML_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"


class ForkUnavailable(RuntimeError):
    """The server cannot fork a clean child for this call; spawn one instead."""


def fork_unavailable_reason() -> str | None:
    """Why this platform gets plainly spawned workers, or None where the fork server is used."""
    if os.environ.get(LAUNCHER_ENV, "").strip().lower() == "spawn":
        return f"{LAUNCHER_ENV}=spawn"
    if not sys.platform.startswith("linux"):
        return f"fork is not safe with torch on {sys.platform}"
    if not hasattr(os, "fork") or not hasattr(socket, "send_fds"):
        return "this Python cannot fork or pass file descriptors"
    return None


def launcher_mode() -> str:
    """``warm``, ``fork`` or ``spawn``: how this process's configurations are started.

    Raises:
        ConfigError: ``DEVICEBENCH_LAUNCHER`` names no launcher.
    """
    from devicebench.errors import ConfigError

    chosen = os.environ.get(LAUNCHER_ENV, "").strip().lower()
    if chosen and chosen not in LAUNCHERS:
        raise ConfigError(f"{LAUNCHER_ENV}={chosen!r}: use one of {', '.join(LAUNCHERS)} (default warm)")
    if fork_unavailable_reason() is not None:
        return "spawn"
    if chosen == "fork":
        return "fork"
    from devicebench.launchers.warmserver import idle_seconds

    return "warm" if idle_seconds() > 0 else "fork"


def comparable_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` less what may differ between the calls one server serves."""
    return {k: v for k, v in env.items() if k not in VOLATILE_ENV}


class ForkServer:
    """The parent's handle on one fork server (start it, run calls in its children, stop it).

    Args:
        env: the environment the server (and so every child) runs with.
        preload: modules to import in the server before the first fork.
        ready_timeout: how long to wait for the server's imports.
    """

    def __init__(self, env: dict[str, str], *, preload: tuple[str, ...] = PRELOAD,
                 ready_timeout: float = 300.0, connection: socket.socket | None = None,
                 warm: dict[str, Any] | None = None) -> None:
        self.env = dict(env)
        self._ready_timeout = ready_timeout
        self._ready: dict[str, Any] | None = None
        self.broken: str | None = None
        #: For a session of the warm server: its socket and whether this command started it.
        self.warm = warm
        self._proc: subprocess.Popen[bytes] | None = None
        if connection is not None:
            self._sock = connection
            return
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._sock = ours
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-P", "-m", "devicebench.launchers.forkserver", str(theirs.fileno()),
                 str(os.getpid()), ",".join(preload)],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=self.env,
            )
        finally:
            theirs.close()

    @classmethod
    def warm_session(cls, env: dict[str, str], *, preload: tuple[str, ...] = PRELOAD, start: bool = True,
                     idle_preload: tuple[str, ...] = ()) -> ForkServer:
        """A session of the warm server fit for ``env``, started if none runs (unless not
        ``start``); see :func:`.warmserver.connect`.

        Raises:
            warmserver.WarmUnavailable: none can be used here (the reason is the message).
        """
        from devicebench.launchers import warmserver

        connection, warm = warmserver.connect(env, preload, start=start, idle_preload=idle_preload)
        return cls(env, preload=preload, connection=connection, warm=warm)

    # -- parent side -------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        """The server's pid (for a warm server's session: the session server's, once ready)."""
        if self._proc is not None:
            return self._proc.pid
        return int(self.wait_ready()["pid"])

    def fits(self, env: dict[str, str]) -> bool:
        """True when a call with ``env`` may run in this server's children."""
        return self.broken is None and comparable_env(env) == comparable_env(self.env)

    def wait_ready(self) -> dict[str, Any]:
        """Block until the server has imported its modules; its report (pid, threads...)."""
        if self._ready is None:
            message = self._receive(self._ready_timeout)
            if message is None or not message.get("ready"):
                self.broken = f"fork server did not start ({message or 'no answer'})"
                raise ForkUnavailable(self.broken)
            self._ready = message
        return self._ready

    def poll_ready(self) -> bool:
        """True once the server has reported its imports done (never blocks)."""
        if self._ready is None and self.broken is None:
            message = self._receive(0)
            if message is not None:
                if message.get("ready"):
                    self._ready = message
                else:
                    self.broken = f"fork server did not start ({message})"
        return self._ready is not None

    def _receive(self, timeout: float | None) -> dict[str, Any] | None:
        readable, _, _ = select.select([self._sock], [], [], timeout)
        if not readable:
            return None
        data = self._sock.recv(_MAX_MESSAGE)
        if not data:
            self.broken = "fork server ended"
            return None
        message: dict[str, Any] = json.loads(data)
        return message

    def run(self, call_path: Path, answer_path: Path, log_path: Path, *, timeout: float | None = None,
            inherit_stderr: bool = False, progress: ProgressPipe | None = None,
            stop_grace_s: float = 5.0, env: dict[str, str] | None = None) -> int | None:
        """Run the call at ``call_path`` in a forked child; block until it ends.

        With ``progress`` (an open pipe), the child gets its write end and each line it
        writes is handed to the pipe's callback as it arrives. Returns the child's exit status
        (negative: the signal that ended it; SIGKILL also when the server died under it), or
        None when ``timeout`` passed (the child is then killed). The child runs with ``env``
        (default: the server's; one that :meth:`fits`) and this process's current folder.

        Raises:
            ForkUnavailable: the server cannot fork a clean child (nothing was started).
            BaseException: whatever interrupted the wait, after the child was stopped.
        """
        self.wait_ready()
        fds = []
        with log_path.open("wb") as log:
            fds.append(log.fileno())
            fds.append(sys.stderr.fileno() if inherit_stderr else log.fileno())
            if progress is not None:
                fds.append(progress.write_fd)
            # A spawned worker would start in the caller's folder, with the caller's environment.
            request = {"call": str(call_path), "answer": str(answer_path), "progress": progress is not None,
                       "cwd": os.getcwd(), "env": self.env if env is None else env}
            try:
                socket.send_fds(self._sock, [json.dumps(request).encode()], fds)
            except OSError as exc:
                self.broken = f"fork server unreachable: {exc}"
                raise ForkUnavailable(self.broken) from None
        if progress is not None:
            progress.close_write()  # the child holds it now
        started = self._receive(60.0)
        if started is None or "pid" not in started:
            reason = (started or {}).get("refused") or self.broken or "no answer from the fork server"
            self.broken = str(reason)
            raise ForkUnavailable(self.broken)
        pid = int(started["pid"])
        try:
            return self._wait_child(pid, timeout, progress)
        except BaseException:
            self._stop_child(pid, stop_grace_s)
            raise

    def _wait_child(self, pid: int, timeout: float | None, progress: ProgressPipe | None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        watch: list[Any] = [self._sock]
        if progress is not None:
            watch.append(progress.read_fd)
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if left == 0.0:
                self._stop_child(pid, 0.0)
                return None
            readable, _, _ = select.select(watch, [], [], left)  # blocks: no polling
            if progress is not None and progress.read_fd in readable and not progress.read():
                watch.remove(progress.read_fd)  # the child closed it (or ended)
            if self._sock in readable:
                message = self._receive(0)
                if message is None:
                    # The server died under its child (which its PDEATHSIG then ends): a crash
                    # of this configuration, reported as such (not re-run elsewhere).
                    self.broken = self.broken or "fork server ended while a child ran"
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                    return -signal.SIGKILL
                if message.get("exited") == pid:
                    return int(message["status"])

    def _stop_child(self, pid: int, grace_s: float) -> None:
        """SIGTERM, then SIGKILL after ``grace_s``; the server reaps it and reports."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while True:
            left = deadline - time.monotonic()
            message = self._receive(left) if left > 0 else None
            if message is None:
                break
            if message.get("exited") == pid:
                return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        self._receive(5.0)

    def close(self) -> None:
        """Stop the server (it has no child left when this is called); for a warm server's
        session, end the session (the warm server stays)."""
        with contextlib.suppress(OSError):
            self._sock.close()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


_ACTIVE: ForkServer | None = None
#: A server started ahead of its session (:func:`prestart`), adopted by the next session.
_EARLY: ForkServer | None = None


def active() -> ForkServer | None:
    """The fork server of the current :func:`session`, if any."""
    return _ACTIVE


@contextlib.contextmanager
def session(env: dict[str, str] | None = None, *, preload: tuple[str, ...] = ()) -> Iterator[ForkServer | None]:
    """A fork server for the calls made inside (none where fork is unavailable): a session of
    the warm server (:mod:`.warmserver`, the default), else one started now and stopped on
    leaving. The server imports torch (and ``preload``) while the caller goes on; the first
    call waits for it. Nested sessions share the outer one's server."""
    global _ACTIVE
    global _EARLY
    if _ACTIVE is not None or launcher_mode() == "spawn":
        yield _ACTIVE
        return
    env = env if env is not None else worker_env()
    server, _EARLY = _EARLY, None
    if server is None or not server.fits(env):
        if server is not None:
            server.close()
        server = _start(env, preload)
    _ACTIVE = server
    try:
        yield server
    finally:
        _ACTIVE = None
        server.close()


def _start(env: dict[str, str], preload: tuple[str, ...], idle_preload: tuple[str, ...] = ()) -> ForkServer:
    extra = tuple(m for m in dict.fromkeys(preload) if m not in PRELOAD)
    if launcher_mode() == "warm":
        from devicebench.launchers.warmserver import WarmUnavailable

        try:
            return ForkServer.warm_session(env, preload=PRELOAD + extra, idle_preload=idle_preload)
        except (WarmUnavailable, OSError):
            pass  # this command's own server, as with DEVICEBENCH_LAUNCHER=fork
    return ForkServer(env, preload=PRELOAD + extra)


def prestart(preload: tuple[str, ...] = (), idle_preload: tuple[str, ...] = ()) -> ForkServer | None:
    """Start (or reach) the next session's server now, so that its imports overlap the
    caller's own (the CLI calls this before it plans the run); stopped at exit if no session
    adopts it. A warm server imports ``idle_preload`` once idle, for later commands. Returns
    it (None where configurations are spawned)."""
    global _EARLY
    if _ACTIVE is not None:
        return _ACTIVE
    if _EARLY is not None or launcher_mode() == "spawn":
        return _EARLY
    _EARLY = _start(worker_env(), preload, idle_preload)
    atexit.register(_close_early)
    return _EARLY


@contextlib.contextmanager
def running_warm_session(preload: tuple[str, ...] = ()) -> Iterator[ForkServer | None]:
    """A session of the warm server fit for this process if one is running (None if not:
    this never starts a server), ended on leaving."""
    from devicebench.launchers.warmserver import WarmUnavailable

    server = None
    if launcher_mode() == "warm":
        try:
            server = ForkServer.warm_session(worker_env(), preload=PRELOAD + preload, start=False)
        except (WarmUnavailable, OSError):
            server = None
    try:
        yield server
    finally:
        if server is not None:
            server.close()


def early() -> ForkServer | None:
    """The server :func:`prestart` started that no session has adopted yet, if any."""
    return _EARLY


def warm_ready() -> ForkServer | None:
    """The server this command prestarted or runs in, if it is a session of a warm server
    that was already running (its imports done): asking one of its children something that
    needs torch costs a fork, not importing torch here."""
    server = _ACTIVE or _EARLY
    if server is None or server.warm is None or server.warm.get("started") or server.broken is not None:
        return None
    try:
        server.wait_ready()
    except ForkUnavailable:
        return None
    return server


def starting() -> bool:
    """True while the server that :func:`prestart` started is still importing: the caller's
    first configuration would wait for it anyway, so the caller may do its own imports now
    without taking a core from anything measured (no child runs yet)."""
    server = _EARLY or _ACTIVE
    return server is not None and server.broken is None and not server.poll_ready()


def _close_early() -> None:
    global _EARLY
    if _EARLY is not None:
        _EARLY.close()
        _EARLY = None


def worker_env() -> dict[str, str]:
    """The environment a worker runs with: this process's, unbuffered, naming its parent."""
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env["PYTHONSAFEPATH"] = "1"  # and whatever the worker starts: the current folder stays off sys.path
    env["DEVICEBENCH_WORKER_PARENT"] = str(os.getpid())
    return env


# -- server side ---------------------------------------------------------------------------------


def _die_with(parent: int) -> None:
    """Get SIGTERM when our parent dies (Linux), and stop now if it is already gone."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)


def freeze_imports() -> None:
    """Move every object the server's imports made to the collector's permanent generation
    (``gc.freeze``, as Python's documentation advises before forking): a child's collections
    then walk only what its configuration makes, not torch's and the libraries' ~400,000
    objects (0.3 s a full collection on 2 cores), and do not write to the pages it shares
    with the server (copy-on-write)."""
    import gc

    gc.collect()
    gc.freeze()


def thread_count() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def refusal(baseline_threads: int) -> str | None:
    """Why forking now would not give a clean child (None: it would)."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        return "CUDA is initialised in the fork server"
    threads = thread_count()
    if threads > baseline_threads:
        return f"the fork server runs {threads} threads"
    return None


def _child(request: dict[str, Any], fds: list[int], server_pid: int) -> None:
    """In the forked child: become a fresh worker, run the call, exit. Never returns."""
    code = 1
    try:
        _die_with(server_pid)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a new interpreter
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(fds[0], 1)
        os.dup2(fds[1], 2)
        progress_fd = fds[2] if request.get("progress") and len(fds) > 2 else None
        for fd in {devnull, fds[0], fds[1]}:
            if fd > 2:
                os.close(fd)
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - the process's own
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
        with contextlib.suppress(OSError, KeyError):
            os.chdir(request["cwd"])
        os.environ.clear()  # the caller's environment, as a spawned worker would have it
        os.environ.update(request["env"])
        if "numpy" in sys.modules:  # a new interpreter's global NumPy RNG is seeded afresh
            sys.modules["numpy"].random.seed()
        from devicebench.launchers.worker import run_call

        run_call(Path(request["call"]), Path(request["answer"]), progress_fd)
        code = 0
    except BaseException:  # noqa: BLE001 - the parent reads the missing answer as a crash
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def serve(sock: socket.socket, baseline_threads: int) -> None:
    """Fork a child per request on ``sock`` and report its pid and exit status, until the
    caller closes its end. A caller that goes away while a child runs (even ``kill -9``)
    stops that child: SIGTERM, then SIGKILL after 5 s."""
    while True:
        try:
            message, fds, _flags, _addr = socket.recv_fds(sock, _MAX_MESSAGE, 4)
        except OSError:
            return
        if not message:
            return  # the parent closed its end
        request = json.loads(message)
        refused = refusal(baseline_threads)
        if refused is not None:
            for fd in fds:
                os.close(fd)
            sock.send(json.dumps({"refused": refused}).encode())
            continue
        pid = os.fork()
        if pid == 0:
            sock.close()
            _child(request, fds, server_pid=os.getppid())
        for fd in fds:
            os.close(fd)
        sock.send(json.dumps({"pid": pid}).encode())
        status = _wait_or_stop(pid, sock)
        if status is None:
            return  # the caller is gone
        sock.send(json.dumps({"exited": pid, "status": status}).encode())


def _wait_or_stop(pid: int, sock: socket.socket) -> int | None:
    """Wait (blocked, never polling where pidfds exist) for child ``pid``; its exit code, or
    None when the caller closed ``sock`` meanwhile (the child is then stopped and reaped)."""
    pidfd = None
    with contextlib.suppress(AttributeError, OSError):
        pidfd = os.pidfd_open(pid)
    try:
        while True:
            watch: list[Any] = [sock] if pidfd is None else [sock, pidfd]
            readable, _, _ = select.select(watch, [], [], None if pidfd is not None else 0.5)
            if sock in readable:
                try:
                    data = sock.recv(_MAX_MESSAGE)
                except OSError:
                    data = b""
                if not data:
                    _terminate(pid)
                    return None
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _terminate(pid: int, grace_s: float = 5.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def _main(argv: list[str]) -> int:
    fd, parent, preload = int(argv[0]), int(argv[1]), [m for m in argv[2].split(",") if m]
    _die_with(parent)
    # Ctrl-C reaches the whole process group: the parent decides what stops, not us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = socket.socket(fileno=fd)
    os.environ[NVML_CHECK] = "1"  # children get the caller's environment back
    import importlib

    loaded = []
    for module in preload:
        try:
            importlib.import_module(module)
            loaded.append(module)
        except ImportError:
            continue
    sys.stdout.flush()
    sys.stderr.flush()
    freeze_imports()
    baseline = thread_count()
    sock.send(json.dumps({"ready": True, "pid": os.getpid(), "threads": baseline, "loaded": loaded}).encode())
    serve(sock, baseline)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
