"""A stored run read back whole: its inference and its training records, from a JSON file
(``--json`` of ``run``, ``infer`` or ``train``) or from the results database."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from devicebench.errors import ConfigError
from devicebench.results.records import InferenceRecord, RunInfo, TrainingRecord
from devicebench.results.validate import check_fields

__all__ = ["load_run", "training_records"]


def training_records(raw: Sequence[dict[str, Any]]) -> list[TrainingRecord]:
    """TrainingRecords from the store's raw dicts (unreadable ones, or ones whose fields do
    not fit their types, are skipped: they never reach a report)."""
    out = []
    for data in raw:
        try:
            record = TrainingRecord.from_dict(data)
            check_fields(record)
        except (KeyError, TypeError, ValueError, AttributeError, RecursionError):
            continue
        out.append(record)
    return out


def load_run(ref: str, db: str | Path | None) -> tuple[RunInfo, list[InferenceRecord], list[TrainingRecord]]:
    """A run and its inference and training records.

    Args:
        ref: a JSON file (a path ending in ``.json``, or any existing file), else a run id,
            a unique prefix of one, or ``last`` in the database ``db``.
        db: the results database (``None``: ``$DEVICEBENCH_DB`` or the user data folder).

    Raises:
        ConfigError: a ``.json`` path that does not exist.
        UserError: a file that is not a devicebench results file; a run not in the store; a
            database that cannot be read.
    """
    from devicebench.results.jsonio import read_json
    from devicebench.results.store import Store

    path = Path(ref)
    if path.suffix == ".json" or path.is_file():
        if not path.is_file():
            raise ConfigError(f"results file not found: {path}")
        run, records = read_json(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            training_raw = [r for r in raw.get("records", []) if r.get("kind") == "training"] + list(raw.get("training", []))
        except (OSError, ValueError, AttributeError):
            training_raw = []
        return run, records, training_records(training_raw)
    with Store(db, readonly=True) as store:  # a read: nothing is created
        run = store.find_run(ref)
        return run, store.records(run.run_id), training_records(store.raw_records(run.run_id, "training"))
