"""The ``devicebench`` command: parse arguments, call the library, render. The only package
that prints.

One module per command family, each parser beside its handler (``p.set_defaults(handler=...)``):
:mod:`~devicebench.cli.inference` (devices, models, infer, run), :mod:`~devicebench.cli.training`
(train, data), :mod:`~devicebench.cli.results` (history, show, report, compare),
:mod:`~devicebench.cli.serving` (serve, pipeline), :mod:`~devicebench.cli.llm` (llm),
:mod:`~devicebench.cli.server` (server: the warm fork server); shared options in
:mod:`~devicebench.cli.options`, the consoles in :mod:`~devicebench.cli.ui`.

Exit codes: 0 success; 1 a measurement failed (error or crash in a configuration); 2 bad
input (unknown model, missing file, unavailable device, unreadable database); 130 Ctrl-C;
143 SIGTERM (finished results are kept in both cases).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence

from devicebench._version import __version__
from devicebench.cli import inference, llm, results, server, serving, training
from devicebench.cli.options import Handler
from devicebench.cli.ui import Ui
from devicebench.errors import DevicebenchError, Terminated

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="devicebench",
        description="How much faster is the GPU than the CPU, for this model, on this machine?",
    )
    parser.add_argument("--version", action="version", version=f"devicebench {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    inference.add_parsers(sub)  # devices, models, infer, run
    training.add_parsers(sub)  # train, data
    results.add_parsers(sub)  # history, show, report, compare
    serving.add_parsers(sub)  # serve, pipeline (issue 16)
    llm.add_parsers(sub)  # llm (issue 15)
    server.add_parsers(sub)  # server: the warm fork server (status, stop)
    return parser


_sigterm_received: list[int] = []


def _on_sigterm(signum: int, frame: object) -> None:
    # Raised in the main thread wherever it is (usually waiting for a worker): the same
    # clean-up as Ctrl-C runs, then the command exits with 143.
    _sigterm_received.append(signum)
    raise Terminated(f"received signal {signum}")


class _Interrupts:
    """Ctrl-C: the first two stop the command cleanly (KeyboardInterrupt: the worker is
    stopped, the run marked ``interrupted``); a third stops it at once, without a traceback.
    Every record is committed as soon as it is measured, so nothing measured is lost."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, signum: int, frame: object) -> None:
        self.count += 1
        if self.count >= 3:
            try:
                os.write(2, b"devicebench: interrupted three times: stopped at once (records already measured "
                            b"are kept in the store)\n")
            finally:
                os._exit(130)
        raise KeyboardInterrupt


def _non_utf8(argv: Sequence[str]) -> str | None:
    """The first argument that is not valid UTF-8 (a file name decoded with surrogates)."""
    for arg in argv:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            return arg.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``devicebench`` command; returns the exit code."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    handler: Handler = args.handler
    ui = Ui.create(json_to_stdout=getattr(args, "json", None) == "-")
    bad = _non_utf8(argv)
    if bad is not None:
        ui.err.print(f"devicebench: error: {bad} is not valid UTF-8: devicebench records names as text; "
                     "rename the file or folder", markup=False, soft_wrap=True)
        return 2
    previous = signal.getsignal(signal.SIGTERM)
    previous_int = signal.getsignal(signal.SIGINT)
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
        signal.signal(signal.SIGINT, _Interrupts())
    except ValueError:  # not the main thread (main() called from a thread): leave it alone
        previous = previous_int = None
    _sigterm_received.clear()
    try:
        code = handler(args, ui)
        # A command that stops on an interrupt and returns (train) says 130; SIGTERM is 143.
        return 143 if code == 130 and _sigterm_received else code
    except DevicebenchError as exc:
        if args.debug:
            raise
        ui.err.print(f"devicebench: error: {exc}", markup=False, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        ui.err.print("interrupted")
        return 143 if isinstance(exc, Terminated) else 130
    except BrokenPipeError:
        os._exit(1)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if previous_int is not None:
            signal.signal(signal.SIGINT, previous_int)
