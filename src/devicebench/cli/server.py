"""``server``: see and stop the warm server that keeps torch imported between commands
(:mod:`devicebench.launchers.warmserver`)."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devicebench.cli.options import Subparsers
    from devicebench.cli.ui import Ui

__all__ = ["add_parsers", "cmd_server"]


def add_parsers(sub: Subparsers) -> None:
    p = sub.add_parser(
        "server", help="the warm server that keeps torch imported between commands: status (default) or stop",
        description="Commands that measure fork each configuration from a warm server that has imported "
                    "torch and the models' libraries once, and stays until idle for DEVICEBENCH_SERVER_IDLE_S "
                    "seconds (default 600; 0: never kept, DEVICEBENCH_LAUNCHER=fork: the same). It listens on "
                    "a Unix socket only this user can open; see docs/architecture.md.")
    p.add_argument("action", nargs="?", default="status", choices=["status", "stop"],
                   help="status: list this user's warm servers (default); stop: stop them")
    p.set_defaults(handler=cmd_server)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "busy"
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"


def cmd_server(args: argparse.Namespace, ui: Ui) -> int:
    from rich.table import Table

    from devicebench.launchers import forkserver

    unavailable = forkserver.fork_unavailable_reason()
    if unavailable is not None:
        ui.note(f"no warm server here: workers are spawned ({unavailable})", out=True)
        return 0
    from devicebench.launchers import warmserver

    try:
        if args.action == "stop":
            stopped = warmserver.stop_servers()
            ui.note(f"stopped {len(stopped)} warm server(s)" + (f": pid {', '.join(map(str, stopped))}" if stopped else ""),
                    out=True)
            return 0
        servers = warmserver.list_servers()
        idle = warmserver.idle_seconds()
    except warmserver.WarmUnavailable as exc:
        ui.note(f"no warm server can run here: {exc}", out=True)
        return 0
    if not servers:
        ui.note("no warm server is running" + ("" if idle > 0 else f" ({warmserver.IDLE_ENV}=0: none is kept)"),
                out=True)
        return 0
    table = Table(title=f"Warm servers ({warmserver.runtime_dir()})",
                  caption="Idle: since its last command ended (it exits after Limit); Sessions: served so far (a "
                          "command opens one or more); Memory: resident, shared with the configurations it forks; "
                          "`devicebench server stop` stops them.")
    for column in ("Pid", "Up", "Idle", "Limit", "Sessions", "Memory", "Imported"):
        table.add_column(column, overflow="fold")
    now = time.time()
    for s in servers:
        memory = f"{s.rss_bytes / 2**20:.0f} MiB" if s.rss_bytes else "?"
        table.add_row(str(s.pid), _age(now - s.started_at), _age(s.idle_for_s), _age(s.idle_limit_s),
                      str(s.sessions_served), memory, ", ".join(dict.fromkeys(m.split(".")[0] for m in s.loaded)))
    ui.table(table)
    return 0
