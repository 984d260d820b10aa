"""JSON files of a run: ``{"schema_version", "tool", "run", "records"}``, written atomically;
and :func:`write_text` for the reports written beside them."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from devicebench.errors import ConfigError, UserError
from devicebench.results.records import SCHEMA_VERSION, InferenceRecord, RunInfo
from devicebench.results.validate import check_fields, first_line

__all__ = ["run_document", "write_json", "read_json", "dump_json", "write_text"]


def run_document(run: RunInfo, records: Sequence[Any], *, partial: bool = False) -> dict[str, Any]:
    """The JSON document of a run: ``records`` are records of any kind (each with
    ``to_dict``: inference, training, LLM, serving...) or their JSON objects already."""
    from devicebench._version import __version__

    return {
        "schema_version": SCHEMA_VERSION,
        "tool": "devicebench",
        "tool_version": __version__,
        "partial": partial,
        "run": run.to_dict(),
        "records": [r if isinstance(r, dict) else r.to_dict() for r in records],
    }


def dump_json(data: Any, target: str | Path) -> None:
    """Write ``data`` as JSON to a path (atomically) or to stdout when ``target`` is ``-``."""
    text = json.dumps(data, indent=2, default=str) + "\n"
    if str(target) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    path = Path(target)
    if path.parent and not path.parent.exists():
        raise UserError(f"cannot write {path}: folder {path.parent} does not exist")
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None


def write_text(target: str | Path, text: str) -> None:
    """Write ``text`` to a path (atomically, creating its folder) or to stdout when ``target``
    is ``-`` (with a final newline).

    Raises:
        ConfigError: the file or its folder cannot be written.
    """
    if str(target) == "-":
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    path = Path(target)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None


def write_json(target: str | Path, run: RunInfo, records: list[InferenceRecord], *, partial: bool = False) -> None:
    dump_json(run_document(run, records, partial=partial), target)


def read_json(path: str | Path) -> tuple[RunInfo, list[InferenceRecord]]:
    """Read a run written by :func:`write_json`.

    Raises:
        UserError: missing, not JSON, not a devicebench file, or from a newer schema.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"results file not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path} is not a devicebench JSON file: {exc}") from None
    if not isinstance(data, dict) or data.get("tool") != "devicebench":
        raise UserError(f"{path} is not a devicebench results file")
    version = data.get("schema_version", 0)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise UserError(
            f"{path} uses results schema {version}, newer than this devicebench "
            f"understands ({SCHEMA_VERSION}): upgrade devicebench"
        )
    try:
        run = RunInfo.from_dict(data["run"])
        check_fields(run, "run")
        raw = data.get("records", [])
        if not isinstance(raw, list):
            raise TypeError("records: expected a list")
        records = []
        for i, r in enumerate(raw):
            if not isinstance(r, dict):
                raise TypeError(f"records[{i}]: expected an object, got {type(r).__name__}")
            if r.get("kind", "inference") == "inference":
                records.append(InferenceRecord.from_dict(r))
                check_fields(records[-1], f"records[{i}]")
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError, UserError) as exc:
        # A field of the wrong type, shape or value (a timing policy out of range raises
        # ConfigError), wherever it is in a record or its parts: say which file.
        raise UserError(f"{path} is not a valid devicebench results file: {first_line(exc)}") from None
    return run, records
