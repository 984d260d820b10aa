"""Escaping at render time: every value that reaches HTML, Markdown or CSV goes through the
function for that format here, whatever its type (a results file a user hands us may hold a
string where a number belongs, and a model or device name is whatever the file says)."""

from __future__ import annotations

import html
from typing import Any

__all__ = ["csv_cell", "html_text", "md_cell", "md_text"]

#: A spreadsheet treats a cell starting with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def html_text(value: Any) -> str:
    """``value`` as HTML text: ``& < > " '`` escaped; ``None`` is empty."""
    return html.escape("" if value is None else str(value))


def md_text(value: Any) -> str:
    """``value`` as Markdown text: no raw HTML passes (``& < >`` escaped), no line breaks."""
    text = "" if value is None else str(value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(text.split("\n")).replace("\r", " ")


def md_cell(value: Any) -> str:
    """``value`` as one cell of a Markdown table: :func:`md_text`, and ``|`` escaped."""
    return md_text(value).replace("|", "\\|")


def csv_cell(value: Any) -> Any:
    """``value`` for a CSV cell: a string that a spreadsheet would take for a formula gets a
    leading ``'`` (line breaks become ``\\n``, which the writer quotes); numbers pass as they are."""
    if not isinstance(value, str):
        return value
    if value.startswith(FORMULA_STARTS):
        value = "'" + value
    # A lone CR is no line end to the writer (so it would not quote it) but is one to readers.
    return value.replace("\r\n", "\n").replace("\r", "\n")
