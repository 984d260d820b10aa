"""The warm server: the fork server kept between commands, so that only the first command
of a while pays for importing torch and the models' libraries.

A run's own fork server (:mod:`.forkserver`) imports torch once per command; on a 2-core
machine that is 6-8 s of a ``run --quick`` that measures for 7. The warm server is the same
server, started by the first command that needs it and left running (detached, in its own
session) until it has been idle for ``DEVICEBENCH_SERVER_IDLE_S`` seconds (default 600).
Later commands connect to it over a Unix socket and get, per command, a *session server*
forked from it; each configuration is forked from that session server exactly as from a
run's own server (:func:`.forkserver._serve`), so a configuration still starts in a process
of its own that has imported torch and never touched a device.

Only a process that would start the same way may use a warm server, so its socket is named
after a key of everything a forked child inherits from the server rather than from the
command: the Python executable and flags, the environment (less a few variables that only
name the caller or the shell: :data:`.forkserver._VOLATILE_ENV`), the source files of
devicebench and the installed versions of torch and the models' libraries, and the
process's context (user and groups, umask, CPU affinity, niceness, resource limits, cgroup,
namespaces). A command whose key differs (another virtual environment, an upgraded torch, an
edited devicebench, ``taskset -c 0``) starts another server; the old one exits when idle.
The child gets the command's exact environment and current folder.

Safety: the socket lives in a folder only this user can open (``$XDG_RUNTIME_DIR/devicebench``
or ``<tmp>/devicebench.server.<uid>``, mode 0700, checked not to be a link or another user's);
both ends check the other's user id (``SO_PEERCRED``); nothing listens on a network. The
session server ends its configuration and exits when its command goes away (the connection
closes), even after ``kill -9``.

``devicebench server status`` lists this user's warm servers; ``devicebench server stop``
stops them. ``DEVICEBENCH_SERVER_IDLE_S=0`` (or ``DEVICEBENCH_LAUNCHER=fork``) keeps to one
server per command, stopped with it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib
import importlib.util
import json
import os
import resource
import select
import signal
import socket
import stat
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devicebench.errors import ConfigError

__all__ = ["IDLE_ENV", "RUNTIME_ENV", "DEFAULT_IDLE_S", "WarmUnavailable", "ServerInfo", "idle_seconds",
           "runtime_dir", "server_key", "connect", "list_servers", "stop_servers"]

#: Seconds a warm server waits for the next command before it exits; 0 turns it off.
IDLE_ENV = "DEVICEBENCH_SERVER_IDLE_S"
DEFAULT_IDLE_S = 600.0
#: Where the sockets live (default ``$XDG_RUNTIME_DIR/devicebench``, else a folder in /tmp).
RUNTIME_ENV = "DEVICEBENCH_RUNTIME_DIR"
#: Libraries whose installed files are part of a server's key (found, never imported, here).
LIBRARIES = ("torch", "torchvision", "transformers", "timm", "numpy", "scipy", "tokenizers", "safetensors",
             "onnxruntime", "openvino", "sklearn", "PIL")
#: At most this many warm servers per user (each key its own): starting one more stops the
#: longest idle.
MAX_SERVERS = 3
_MAX_MESSAGE = 1 << 16
_SUN_PATH_MAX = 107


class WarmUnavailable(RuntimeError):
    """No warm server can be used here (the reason is the message); a run's own server is."""


@dataclass
class ServerInfo:
    """One running warm server, as ``devicebench server status`` shows it."""

    pid: int
    socket: str
    started_at: float
    idle_for_s: float | None
    idle_limit_s: float
    sessions_served: int
    sessions_active: int
    loaded: list[str] = field(default_factory=list)
    rss_bytes: int | None = None
    python: str = ""
    devicebench: str = ""


def idle_seconds(environ: dict[str, str] | None = None) -> float:
    """``DEVICEBENCH_SERVER_IDLE_S`` (default 600); 0 means no warm server.

    Raises:
        ConfigError: the value is not a number of seconds >= 0.
    """
    raw = (environ if environ is not None else os.environ).get(IDLE_ENV, "").strip()
    if not raw:
        return DEFAULT_IDLE_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise ConfigError(f"{IDLE_ENV}={raw!r}: give the seconds a warm server waits for the next command "
                          f"(0 turns it off; default {DEFAULT_IDLE_S:.0f})")
    return value


def runtime_dir(environ: dict[str, str] | None = None) -> Path:
    """This user's folder of warm-server sockets, created private if missing.

    Raises:
        WarmUnavailable: the folder is not a private folder of this user's (a link, another
            user's, readable by others) or cannot be made.
    """
    environ = environ if environ is not None else dict(os.environ)
    chosen = environ.get(RUNTIME_ENV, "").strip()
    if chosen:
        folder = Path(chosen)
    else:
        xdg = environ.get("XDG_RUNTIME_DIR", "").strip()
        if xdg and _private_folder(Path(xdg)) is None:
            folder = Path(xdg) / "devicebench"
        else:
            import tempfile

            folder = Path(tempfile.gettempdir()) / f"devicebench.server.{os.getuid()}"
    with contextlib.suppress(FileExistsError):
        old = os.umask(0o077)
        try:
            folder.mkdir(mode=0o700)
        except OSError as exc:
            if not isinstance(exc, FileExistsError):
                raise WarmUnavailable(f"cannot make {folder}: {exc.strerror}") from None
            raise
        finally:
            os.umask(old)
    problem = _private_folder(folder)
    if problem is not None:
        raise WarmUnavailable(f"{folder} {problem}")
    return folder


def _private_folder(folder: Path) -> str | None:
    """None when ``folder`` is a real folder of this user's that nobody else can open."""
    try:
        st = os.lstat(folder)
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        return "is not a folder (a link or a file)"
    if st.st_uid != os.getuid():
        return "belongs to another user"
    if st.st_mode & 0o077:
        return f"can be opened by other users (mode {stat.S_IMODE(st.st_mode):o})"
    return None


# -- the key: what a forked child inherits from the server rather than from the command -------


def _stat_key(path: str) -> list[Any]:
    try:
        st = os.stat(path)
    except OSError:
        return [path, None]
    return [path, st.st_mtime_ns, st.st_size, st.st_ino]


#: devicebench's own package folder (this file is in its launchers/).
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _code_fingerprint(package: str = PACKAGE_DIR) -> list[Any]:
    """devicebench's source files and the installed libraries' top files (no import)."""
    ours: list[Any] = []
    for folder, dirs, files in os.walk(package):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        ours.extend(_stat_key(os.path.join(folder, f)) for f in sorted(files) if f.endswith(".py"))
    libraries: list[Any] = []
    for name in LIBRARIES:
        module = sys.modules.get(name)
        origin = getattr(module, "__file__", None) if module is not None else None
        if origin is None:
            try:
                spec = importlib.util.find_spec(name)
            except (ImportError, ValueError):
                spec = None
            origin = spec.origin if spec is not None else None
        if origin is None:
            libraries.append([name, None])
            continue
        top = os.path.dirname(origin)
        libraries.append([name, _stat_key(origin), _stat_key(os.path.join(top, "version.py"))])
    return [package, ours, libraries]


def _process_context() -> dict[str, Any]:
    """What fork hands the child from the server: identity, limits, placement."""
    umask = os.umask(0o022)
    os.umask(umask)
    context: dict[str, Any] = {
        "ids": [os.getuid(), os.geteuid(), os.getgid(), os.getegid(), sorted(os.getgroups())],
        "umask": umask,
        "nice": os.getpriority(os.PRIO_PROCESS, 0),
        "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "rlimits": {name: resource.getrlimit(getattr(resource, name)) for name in sorted(dir(resource))
                    if name.startswith("RLIMIT_")},
    }
    with contextlib.suppress(OSError):
        context["cgroup"] = Path("/proc/self/cgroup").read_text()
    namespaces = {}
    for ns in ("cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"):
        with contextlib.suppress(OSError):
            namespaces[ns] = os.readlink(f"/proc/self/ns/{ns}")
    context["namespaces"] = namespaces
    return context


def server_key(env: dict[str, str]) -> str:
    """The key of the warm server fit for a command with ``env`` in this process."""
    from devicebench.launchers.forkserver import comparable_env

    described = {
        # python and python3 of one virtual environment are one interpreter with one prefix
        "python": [sys.prefix, sys.base_prefix, os.path.realpath(sys.executable), sys.version,
                   sys.implementation.cache_tag, list(sys.flags)],
        "env": sorted(comparable_env(env).items()),
        "code": _code_fingerprint(),
        "context": _process_context(),
        "protocol": 1,
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()


def _paths(folder: Path, key: str) -> tuple[Path, Path, Path]:
    stem = folder / f"w-{key[:20]}"
    return stem.with_suffix(".sock"), stem.with_suffix(".lock"), stem.with_suffix(".log")


# -- the command's side ----------------------------------------------------------------------------


def _peer_uid(sock: socket.socket) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


def _try_connect(path: Path) -> socket.socket | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISSOCK(st.st_mode) or st.st_uid != os.getuid():
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        return None
    if _peer_uid(sock) != os.getuid():
        sock.close()
        return None
    return sock


def _start(folder: Path, key: str, env: dict[str, str], preload: tuple[str, ...], idle_s: float) -> str:
    """Start a server for ``key``, detached; wait until it listens. Returns what it said."""
    _, _, log_path = _paths(folder, key)
    source = os.path.dirname(PACKAGE_DIR)
    read_fd, write_fd = os.pipe()
    # This devicebench (a checkout run from its folder need not be installed), without moving
    # an installed one's folder ahead of the standard library.
    bootstrap = ("import sys; sys.argv[1] in sys.path or sys.path.insert(0, sys.argv[1]); "
                 "from devicebench.launchers.warmserver import _main; sys.exit(_main(sys.argv[2:]))")
    try:
        with open(log_path, "ab") as log:
            os.chmod(log_path, 0o600)
            subprocess.Popen(
                [sys.executable, "-P", "-c", bootstrap, source, str(folder), key, repr(idle_s), str(write_fd),
                 ",".join(preload), PACKAGE_DIR],
                pass_fds=(write_fd,), stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=_server_env(env),
                start_new_session=True, cwd="/",
            )
    finally:
        os.close(write_fd)
    try:
        readable, _, _ = select.select([read_fd], [], [], 60.0)
        said = os.read(read_fd, 256).decode(errors="replace").strip() if readable else "no answer"
    finally:
        os.close(read_fd)
    return said or "ended before listening"


def _server_env(env: dict[str, str]) -> dict[str, str]:
    from devicebench.launchers.forkserver import VOLATILE_ENV

    return {k: v for k, v in env.items() if k not in VOLATILE_ENV}


def connect(env: dict[str, str], preload: tuple[str, ...], *, start: bool = True,
            idle_preload: tuple[str, ...] = ()) -> tuple[socket.socket, dict[str, Any]]:
    """A connection to a session of the warm server fit for ``env`` (started if none runs,
    unless ``start`` is False). The server imports ``preload`` first if it has not yet, and
    ``idle_preload`` once it has no command to serve (for the commands after this one).

    Returns the socket (the next message on it is the session server's "ready") and what
    happened: ``{"socket": path, "started": bool}``.

    Raises:
        WarmUnavailable: no warm server can be used (idle time 0, no private folder, a socket
            path too long, a server that would not start); the caller uses its own server.
    """
    idle_s = idle_seconds(env)
    if idle_s <= 0:
        raise WarmUnavailable(f"{IDLE_ENV}=0")
    folder = runtime_dir(env)
    key = server_key(env)
    sock_path, _, log_path = _paths(folder, key)
    if len(os.fsencode(sock_path)) > _SUN_PATH_MAX:
        raise WarmUnavailable(f"socket path too long ({sock_path})")
    sock = _try_connect(sock_path)
    started = False
    if sock is None and not start:
        raise WarmUnavailable("no warm server is running")
    if sock is None:
        _make_room(env)
        said = _start(folder, key, env, preload, idle_s)
        started = said == "listening"
        deadline = time.monotonic() + (10.0 if said == "busy" else 0.0)
        sock = _try_connect(sock_path)
        while sock is None and time.monotonic() < deadline:  # another command is starting it
            time.sleep(0.1)
            sock = _try_connect(sock_path)
        if sock is None:
            raise WarmUnavailable(f"the warm server did not start ({said}; see {log_path})")
    try:
        sock.send(json.dumps({"session": True, "key": key, "preload": list(preload),
                              "idle_preload": list(idle_preload)}).encode())
    except OSError as exc:
        sock.close()
        raise WarmUnavailable(f"the warm server did not answer ({exc.strerror})") from None
    return sock, {"socket": str(sock_path), "started": started}


def _make_room(environ: dict[str, str]) -> list[int]:
    """Before starting another server: stop idle ones (longest idle first) so that at most
    :data:`MAX_SERVERS` - 1 remain (each holds torch in memory: 0.5-0.8 GiB). Their pids."""
    running = list_servers(environ)
    idle = [s for s in running if s.sessions_active == 0 and s.idle_for_s is not None]
    extra = len(running) - (MAX_SERVERS - 1)
    stopped = []
    for server in sorted(idle, key=lambda s: -(s.idle_for_s or 0.0))[:max(0, extra)]:
        answer = _ask(Path(server.socket), {"stop": True})
        if answer is not None:
            stopped.append(int(answer["stopping"]))
    return stopped


def _ask(path: Path, request: dict[str, Any], timeout: float = 5.0) -> dict[str, Any] | None:
    sock = _try_connect(path)
    if sock is None:
        return None
    with sock:
        try:
            sock.send(json.dumps(request).encode())
            readable, _, _ = select.select([sock], [], [], timeout)
            data = sock.recv(_MAX_MESSAGE) if readable else b""
        except OSError:
            return None
    answer: dict[str, Any] | None = json.loads(data) if data else None
    return answer


def _rss(pid: int) -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return None


def _ask_each(environ: dict[str, str] | None, request: dict[str, Any]) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Ask every warm server of this user's (any key) the same thing: (socket, answer) of
    each that answers; a socket left by a dead server is removed."""
    for path in sorted(runtime_dir(environ).glob("w-*.sock")):
        answer = _ask(path, request)
        if answer is None:
            _remove_if_dead(path)
        else:
            yield path, answer


def list_servers(environ: dict[str, str] | None = None) -> list[ServerInfo]:
    """This user's running warm servers (any key)."""
    servers = []
    for path, answer in _ask_each(environ, {"status": True}):
        pid = int(answer["pid"])
        servers.append(ServerInfo(pid=pid, socket=str(path), started_at=float(answer["started_at"]),
                                  idle_for_s=answer.get("idle_for_s"), idle_limit_s=float(answer["idle_limit_s"]),
                                  sessions_served=int(answer["sessions_served"]),
                                  sessions_active=int(answer["sessions_active"]), loaded=list(answer["loaded"]),
                                  rss_bytes=_rss(pid), python=str(answer.get("python", "")),
                                  devicebench=str(answer.get("devicebench", ""))))
    return servers


def stop_servers(environ: dict[str, str] | None = None, timeout: float = 10.0) -> list[int]:
    """Stop this user's warm servers (the commands they serve go on to their end); their pids."""
    stopped = []
    for path, answer in _ask_each(environ, {"stop": True}):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and path.exists():
            time.sleep(0.05)
        stopped.append(int(answer["stopping"]))
    return stopped


def _remove_if_dead(sock_path: Path) -> None:
    """Remove a socket whose server is gone (its lock is free)."""
    lock_path = sock_path.with_suffix(".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR)
    except OSError:
        with contextlib.suppress(OSError):
            sock_path.unlink()
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return  # a server holds it (starting, or busy)
    try:
        with contextlib.suppress(OSError):
            sock_path.unlink()
    finally:
        os.close(fd)


# -- the server's side -----------------------------------------------------------------------------


class _Stop(Exception):
    pass


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Stop


def _lock(lock_path: Path) -> int | None:
    """Hold ``lock_path`` (the one server of a key); None if another server holds it."""
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        try:
            if os.fstat(fd).st_ino == os.stat(lock_path).st_ino:
                return fd
        except OSError:
            pass
        os.close(fd)  # removed by a server that exited meanwhile: take the new one


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _import(modules: list[str], loaded: list[str]) -> None:
    for module in modules:
        if module in loaded:
            continue
        try:
            importlib.import_module(module)
        except ImportError:
            continue
        loaded.append(module)


def _main(argv: list[str]) -> int:
    folder, key, idle_s, status_fd = Path(argv[0]), argv[1], float(argv[2]), int(argv[3])
    preload = [m for m in argv[4].split(",") if m] if len(argv) > 4 else []
    from devicebench.launchers import forkserver

    sock_path, lock_path, log_path = _paths(folder, key)
    if len(argv) > 5 and os.path.realpath(argv[5]) != os.path.realpath(PACKAGE_DIR):
        os.write(status_fd, f"another devicebench was imported ({PACKAGE_DIR})".encode())
        os.close(status_fd)
        return 1
    lock = _lock(lock_path)
    if lock is None:
        os.write(status_fd, b"busy")
        os.close(status_fd)
        return 0
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    with contextlib.suppress(FileNotFoundError):
        sock_path.unlink()  # left by a server that died (we hold its lock)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    old = os.umask(0o177)
    try:
        listener.bind(str(sock_path))
    finally:
        os.umask(old)
    listener.listen(16)
    os.write(status_fd, b"listening")
    os.close(status_fd)
    started_at = time.time()
    try:
        os.environ[forkserver.NVML_CHECK] = "1"  # never initialise the CUDA driver here
        loaded: list[str] = []
        _import(list(dict.fromkeys(list(forkserver.PRELOAD) + preload)), loaded)
        sys.stdout.flush()
        sys.stderr.flush()
        forkserver.freeze_imports()
        baseline = forkserver.thread_count()
        sessions: dict[int, int] = {}  # pidfd (or -pid without pidfds) -> session pid
        served = 0
        idle_preload: list[str] = []
        idle_since = time.monotonic()
        while True:
            if sessions:
                timeout = None if all(fd >= 0 for fd in sessions) else 1.0
            else:
                timeout = idle_since + idle_s - time.monotonic()
                if timeout <= 0:
                    break
            waits: list[Any] = [listener, *(fd for fd in sessions if fd >= 0)]
            readable: list[Any] = select.select(waits, [], [], timeout)[0]
            for fd, pid in list(sessions.items()):
                if fd in readable or fd < 0:
                    done, _ = os.waitpid(pid, os.WNOHANG if fd < 0 else 0)
                    if done:
                        del sessions[fd]
                        if fd >= 0:
                            os.close(fd)
                        if not sessions:
                            # Nothing runs now: import what commands asked for "when idle"
                            # (never while one of their configurations might be measured).
                            if any(m not in loaded for m in idle_preload):
                                _import(idle_preload, loaded)
                                forkserver.freeze_imports()
                                baseline = max(baseline, forkserver.thread_count())
                            idle_since = time.monotonic()
            if listener not in readable:
                continue
            conn, _ = listener.accept()
            with contextlib.ExitStack() as close:
                close.callback(conn.close)
                if _peer_uid(conn) != os.getuid():
                    continue
                ready, _, _ = select.select([conn], [], [], 10.0)
                if not ready:
                    continue
                try:
                    request = json.loads(conn.recv(_MAX_MESSAGE) or b"{}")
                except (OSError, ValueError):
                    continue
                if request.get("status"):
                    idle_for = None if sessions else time.monotonic() - idle_since
                    with contextlib.suppress(OSError):
                        conn.send(json.dumps({
                            "pid": os.getpid(), "started_at": started_at, "idle_for_s": idle_for,
                            "idle_limit_s": idle_s, "sessions_served": served, "sessions_active": len(sessions),
                            "loaded": loaded, "python": sys.version.split()[0],
                            "devicebench": _version(),
                        }).encode())
                    continue
                if request.get("stop"):
                    with contextlib.suppress(OSError):
                        conn.send(json.dumps({"stopping": os.getpid()}).encode())
                    break
                if not request.get("session") or request.get("key") != key:
                    with contextlib.suppress(OSError):
                        conn.send(json.dumps({"refused": "not a session request for this server"}).encode())
                    continue
                idle_preload.extend(str(m) for m in request.get("idle_preload", []) if str(m) not in idle_preload)
                before = len(loaded)
                _import([str(m) for m in request.get("preload", [])], loaded)
                if len(loaded) > before:  # imports may start a library's thread pool (scipy's BLAS)
                    forkserver.freeze_imports()
                    baseline = max(baseline, forkserver.thread_count())
                refused = forkserver.refusal(baseline)
                if refused is not None:
                    with contextlib.suppress(OSError):
                        conn.send(json.dumps({"refused": refused}).encode())
                    continue
                pid = os.fork()
                if pid == 0:
                    _session(conn, listener, list(sessions), baseline, loaded, started_at, served)
                served += 1
                watch = _pidfd(pid)
                sessions[watch if watch is not None else -pid] = pid
    except _Stop:
        pass
    finally:
        with contextlib.suppress(OSError):
            sock_path.unlink()
        listener.close()
        with contextlib.suppress(OSError):
            lock_path.unlink()
        with contextlib.suppress(OSError):
            log_path.unlink()  # kept only when a server could not start (a command names it)
        os.close(lock)
    return 0


def _version() -> str:
    from devicebench._version import __version__

    return __version__


def _session(conn: socket.socket, listener: socket.socket, pidfds: list[int], baseline: int, loaded: list[str],
             started_at: float, served: int) -> None:
    """In the forked session server: serve one command's configurations, then exit."""
    from devicebench.launchers import forkserver

    code = 0
    try:
        listener.close()
        for fd in pidfds:
            if fd >= 0:
                os.close(fd)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        conn.send(json.dumps({"ready": True, "pid": os.getpid(), "threads": baseline, "loaded": loaded,
                              "warm": {"server": os.getppid(), "started_at": started_at,
                                       "sessions_served": served}}).encode())
        forkserver.serve(conn, baseline)
    except BaseException:  # noqa: BLE001 - a session ends with its command either way
        code = 1
    finally:
        os._exit(code)
