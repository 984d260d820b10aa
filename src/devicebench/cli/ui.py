"""Where the CLI's output goes: two rich consoles, one for results and one for the rest."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["Ui", "fit_columns", "print_table"]


@dataclass
class Ui:
    """Tables and results go to ``out`` (stdout, unless JSON goes there: then stderr);
    progress, notes, warnings and errors go to ``err`` (stderr).

    The width is the terminal's, or ``$COLUMNS`` (80 without it) when the output is a pipe or
    a file: every default table fits 80 columns. Everything on ``err`` (notes, warnings) is
    printed as one logical line (``soft_wrap``): the terminal wraps it, a pipe gets it whole.
    """

    out: Console
    err: Console

    @classmethod
    def create(cls, *, json_to_stdout: bool = False) -> Ui:
        return cls(out=Console(stderr=json_to_stdout, highlight=False),
                   err=Console(stderr=True, highlight=False, soft_wrap=True))

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
    the console's width, not padded to the table's). Column widths come from
    :func:`fit_columns`; ``wide``: every column at its natural width, even beyond the
    console's (``--wide``: every statistic, nothing wrapped)."""
    title, caption = table.title, table.caption
    table.title = table.caption = None
    width = console.width
    try:
        if title:
            _print_wrapped(console, title)
        # rich never renders wider than the console (it would crop the lines): widen it for
        # this table only when the table cannot be narrower without cutting something.
        console.width = max(width, fit_columns(table, None if wide else width))
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


#: Where a number cell may break: before an interval or a note in brackets, after a
#: separator ("50.0 ms [49.9-50.1]", "50.9 / 52.1 ms", "2.00 ms + 0.40 ms"); never between a
#: value and its unit.
_NUMBER_BREAKS = re.compile(r"\s+(?=[\[(])|(?<=[+/>])\s+")


def fit_columns(table: Table, width: int | None) -> int:
    """Give each column of ``table`` a fixed width so that it fits ``width`` characters
    (``None``: natural widths), and return the table's width.

    Each column has a natural width (its longest line) and a minimum: a name (a column that
    does not wrap) its longest cell, a number its longest unbreakable piece (a value with its
    unit), text its longest word up to 12 characters (longer words fold). Headers wrap first;
    then text and number columns shrink, the one with the most to spare first; names never. A table whose minimum is wider than ``width``
    gets its minimum (it grows past the console rather than cut anything)."""
    natural, snug, minimum, order = [], [], [], []
    for column in table.columns:
        header = column.header if isinstance(column.header, str) else ""
        cells = [Text.from_markup(c).plain if isinstance(c, str) else "" for c in column.cells]
        cell_lines = [line for t in cells for line in t.splitlines()] or [""]
        header_word = max((len(w) for w in header.split()), default=1)
        if column.no_wrap:
            low = max([header_word] + [len(line) for line in cell_lines])
            rank = 2
        elif column.justify == "right":
            low = max([header_word] + [len(p) for t in cells for p in _NUMBER_BREAKS.split(t)])
            rank = 1
        else:
            longest = max((len(w) for t in [header, *cells] for w in t.split()), default=1)
            low = max(4, min(longest, 12))
            rank = 0
        widest_cell = max(len(line) for line in cell_lines)
        natural.append(max(widest_cell, len(header), low))
        snug.append(max(widest_cell, header_word, low))  # the header wrapped at its spaces
        minimum.append(low)
        order.append(rank)
    overhead = 3 * len(table.columns) + 1  # one space of padding each side, one border each
    widths = list(natural)
    if width is not None:
        excess = sum(widths) + overhead - width
        # First wrap headers, then cells (the column with the most room to give first); names never.
        for floor, ranks in ((snug, (0, 1, 2)), (minimum, (0, 1))):
            while excess > 0:
                shrinkable = [i for i, w in enumerate(widths) if order[i] in ranks and w > floor[i]]
                if not shrinkable:
                    break
                i = max(shrinkable, key=lambda k: widths[k] - floor[k])
                widths[i] -= 1
                excess -= 1
    for column, w in zip(table.columns, widths):
        column.width = w
    return sum(widths) + overhead
