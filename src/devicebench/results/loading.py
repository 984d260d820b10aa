"""A stored run read back whole: its inference and its training records, from a JSON file
(``--json`` of ``run``, ``infer`` or ``train``) or from the results database."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from devicebench.errors import ConfigError, StoreError, UserError
from devicebench.results.records import InferenceRecord, RunInfo, TrainingRecord
from devicebench.results.validate import check_fields, first_line

__all__ = ["load_run", "training_records"]


def training_records(raw: Sequence[dict[str, Any]]) -> list[TrainingRecord]:
    """TrainingRecords from raw dicts (a results file's or the store's), each checked field by
    field against its type.

    Raises:
        ValueError: a record that is not an object, or whose field does not fit its type
            (the message names it: ``training[0].epochs[1].epoch_s: expected float, got str``).
    """
    out = []
    for i, data in enumerate(raw):
        try:
            record = TrainingRecord.from_dict(data)
            check_fields(record, f"training[{i}]")
        except (KeyError, TypeError, AttributeError, RecursionError) as exc:
            raise ValueError(f"training[{i}]: {first_line(exc)}") from None
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
        run, records = read_json(path)  # the whole document was valid JSON and an object
        raw = json.loads(path.read_text(encoding="utf-8"))
        try:
            training_raw = [r for r in raw.get("records", []) if r.get("kind") == "training"] + list(raw.get("training", []))
            return run, records, training_records(training_raw)
        except (ValueError, TypeError, AttributeError) as exc:
            raise UserError(f"{path} is not a valid devicebench results file: {first_line(exc)}") from None
    with Store(db, readonly=True) as store:  # a read: nothing is created
        run = store.find_run(ref)
        try:
            training = training_records(store.raw_records(run.run_id, "training"))
        except ValueError as exc:
            raise StoreError(f"{store.path}: run {run.run_id} has an invalid record: {first_line(exc)}") from None
        return run, store.records(run.run_id), training
