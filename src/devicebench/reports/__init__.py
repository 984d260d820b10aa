"""Stage 5: pure functions from records to tables and text."""

from devicebench.reports.tables import (
    SeedRow,
    detail_table,
    devices_table,
    history_table,
    seed_rows,
    seed_table,
    seed_table_markdown,
    warnings_for,
)

__all__ = [
    "SeedRow",
    "detail_table",
    "devices_table",
    "history_table",
    "seed_rows",
    "seed_table",
    "seed_table_markdown",
    "warnings_for",
]
