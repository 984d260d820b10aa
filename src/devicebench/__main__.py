"""``python -m devicebench``, and the ``devicebench`` command (``console``)."""

from __future__ import annotations

import gc
import sys

from devicebench.cli import main

__all__ = ["console"]


def console() -> None:
    """Run the command and exit with its code.

    Before the interpreter's exit, every object is moved to the collector's permanent
    generation (:func:`gc.freeze`): the exit's collections then skip them, and what they
    hold goes back to the operating system with the process. The exit of a ``run``'s parent
    (rich, numpy, matplotlib and devicebench imported) took 0.15 s of collecting otherwise,
    twice that with torch. Module teardown still runs (files still open are closed, ``atexit``
    handlers run); only objects kept alive by reference cycles are not finalised. Not in
    :func:`~devicebench.cli.main` itself, which a caller's process (tests, notebooks) may call
    and go on.
    """
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    console()
