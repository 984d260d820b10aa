"""Where the CLI's output goes: two rich consoles, one for results and one for the rest."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console

__all__ = ["Ui"]


@dataclass
class Ui:
    """Tables and results go to ``out`` (stdout, unless JSON goes there: then stderr);
    progress, notes, warnings and errors go to ``err`` (stderr)."""

    out: Console
    err: Console

    @classmethod
    def create(cls, *, json_to_stdout: bool = False) -> Ui:
        ui = cls(out=Console(stderr=json_to_stdout, highlight=False), err=Console(stderr=True, highlight=False))
        # Wide enough for the detail table when output goes to a file or a pipe.
        for console in (ui.out, ui.err):
            if not console.is_terminal:
                console.width = max(console.width, 160)
        return ui
