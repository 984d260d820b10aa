"""The tuning cache: each device's winning configuration, keyed by model, device and machine.

A JSON file (``tuning-cache.json``) beside the results database, so that ``--db`` and
``$DEVICEBENCH_DB`` move it too. The key holds the model, the device, the batch size, the
weights and seed, and a hash of the environment fingerprint (CPU, cores, accelerators,
driver, torch, CUDA, OS, onnxruntime): a new torch or another machine never reuses an old
winner. Writes are atomic (a temporary file, then a rename); a damaged file is set aside
and rebuilt rather than stopping a run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from devicebench.results.records import SCHEMA_VERSION

__all__ = ["TuningCache", "default_cache_path", "CACHE_FILE"]

CACHE_FILE = "tuning-cache.json"


def default_cache_path(db_path: str | Path | None = None) -> Path:
    """``tuning-cache.json`` in the folder of the results database (``db_path`` or the default)."""
    from devicebench.results.store import default_db_path

    db = Path(db_path).expanduser() if db_path is not None else default_db_path()
    return db.parent / CACHE_FILE


class TuningCache:
    """Winners of earlier tuning runs."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self.warning = ""

    @staticmethod
    def key(model: str, device: str, batch_size: int, weights: str | None, seed: int, fingerprint: str) -> str:
        return f"{model}|{device}|b{batch_size}|{weights or 'random'}|seed{seed}|env:{fingerprint}"

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            self.warning = f"tuning cache {self.path} was unreadable ({exc}); starting a new one"
            try:
                os.replace(self.path, self.path.with_suffix(".json.bad"))
            except OSError:
                pass
            return {}
        entries = data.get("entries") if isinstance(data, dict) else None
        return entries if isinstance(entries, dict) else {}

    def get(self, key: str) -> dict[str, Any] | None:
        entry = self._load().get(key)
        return entry if isinstance(entry, dict) and isinstance(entry.get("candidate"), dict) else None

    def put(self, key: str, entry: dict[str, Any]) -> None:
        entries = self._load()
        entries[key] = entry
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"schema_version": SCHEMA_VERSION, "entries": entries}, indent=2),
                       encoding="utf-8")
        os.replace(tmp, self.path)

    def entries(self) -> dict[str, Any]:
        return self._load()
