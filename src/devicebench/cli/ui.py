"""Where the CLI's output goes: two rich consoles, one for results and one for the rest."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["Ui", "print_table"]


@dataclass
class Ui:
    """Tables and results go to ``out`` (stdout, unless JSON goes there: then stderr);
    progress, notes, warnings and errors go to ``err`` (stderr).

    The width is the terminal's, or ``$COLUMNS`` (80 without it) when the output is a pipe or
    a file: every default table fits 80 columns. Warnings and notes are printed as one logical
    line each (``soft_wrap``): the terminal wraps them, a pipe gets them whole.
    """

    out: Console
    err: Console

    @classmethod
    def create(cls, *, json_to_stdout: bool = False) -> Ui:
        return cls(out=Console(stderr=json_to_stdout, highlight=False), err=Console(stderr=True, highlight=False))

    def warn(self, text: str) -> None:
        """``warning: TEXT`` on ``err``, one logical line (TEXT is not markup)."""
        self.err.print(Text.assemble(("warning:", "yellow"), " ", text), soft_wrap=True)

    def note(self, text: str, *, out: bool = False) -> None:
        """A plain line (not markup), one logical line, on ``err`` (``out``: on ``out``)."""
        (self.out if out else self.err).print(text, markup=False, soft_wrap=True)

    def table(self, table: Table, *, wide: bool = False, err: bool = False) -> None:
        """Print a table (see :func:`print_table`) on ``out`` (``err``: on ``err``)."""
        print_table(self.err if err else self.out, table, wide=wide)


def print_table(console: Console, table: Table, *, wide: bool = False) -> None:
    """Print ``table`` with its title above and its caption below as plain lines (wrapped at
    the console's width, not padded to the table's). ``wide``: the table takes the width it
    needs even beyond the console's (``--wide``: every statistic, nothing cut)."""
    title, caption = table.title, table.caption
    table.title = table.caption = None
    _keep_words_whole(table)
    width = console.width
    try:
        if title:
            _print_wrapped(console, title)
        if wide:  # rich never renders wider than the console: widen it for this table only
            console.width = max(width, console.measure(table, options=console.options.update_width(100_000)).maximum)
        console.print(table)
        console.width = width
        if caption:
            _print_wrapped(console, caption, style="dim")
    finally:
        console.width = width
        table.title, table.caption = title, caption


def _print_wrapped(console: Console, markup: str, style: str = "") -> None:
    """Markup text wrapped at the console's width, without trailing spaces."""
    text = Text.from_markup(markup, style=style)
    for line in text.wrap(console, console.width):
        line.rstrip()
        console.print(line, soft_wrap=True)


def _keep_words_whole(table: Table) -> None:
    """A column that does not wrap (a name) is at least as wide as its widest cell, and a
    number column as its widest word: when the console is too narrow for the table, the
    table grows past it rather than cut a name or split a number (text columns still fold)."""
    for column in table.columns:
        if column.overflow == "fold" and column.justify != "right":
            continue
        widest = 0
        for cell in column.cells:
            plain = Text.from_markup(cell).plain if isinstance(cell, str) else ""
            parts = plain.splitlines() if column.no_wrap else plain.split()
            widest = max([widest, *(len(p) for p in parts)])
        column.min_width = max(column.min_width or 0, widest)
