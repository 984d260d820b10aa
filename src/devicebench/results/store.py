"""The results store: one SQLite file, versioned with ``PRAGMA user_version``.

* Each record is committed as soon as it is measured, so a crash or Ctrl-C keeps every
  finished result.
* WAL journal and a busy timeout let several devicebench processes write one file at once.
* The schema moves forward by ordered migrations; a file written by a newer devicebench, or
  one that is not a database, is reported and never modified.
"""

from __future__ import annotations

import json
import os
import sqlite3
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import platformdirs

from devicebench.errors import (
    RunNotFoundError,
    StoreError,
    StoreVersionError,
    UserError,
)
from devicebench.results.records import DeviceRef, InferenceRecord, RunInfo, utc_now
from devicebench.results.validate import check_fields, first_line


class StoredRecord(Protocol):
    """What the store needs of a record: identity, the indexed columns, and a JSON form."""

    record_id: str
    run_id: str
    kind: str
    model: str
    device: DeviceRef
    batch_size: int
    precision: str
    status: str
    timestamp: str

    @property
    def headline_ms(self) -> float | None: ...

    def to_dict(self) -> dict[str, Any]: ...


__all__ = ["Store", "StoredRecord", "default_db_path", "MIGRATIONS", "LATEST_VERSION", "DB_ENV_VAR"]

#: Environment variable that overrides the default database path (``--db`` overrides both).
DB_ENV_VAR = "DEVICEBENCH_DB"

#: Ordered migrations: entry i moves the schema from version i to i + 1. Never edit one
#: that has shipped; append a new one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 0 -> 1: runs and their records, each record a JSON document with indexed columns.
    (
        """CREATE TABLE runs (
            run_id TEXT PRIMARY KEY,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL,
            command TEXT NOT NULL,
            tool_version TEXT,
            hostname TEXT,
            environment TEXT NOT NULL
        )""",
        """CREATE TABLE records (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            record_id TEXT UNIQUE NOT NULL,
            run_id TEXT NOT NULL REFERENCES runs(run_id),
            model TEXT NOT NULL,
            device_type TEXT NOT NULL,
            device_name TEXT,
            batch_size INTEGER,
            precision TEXT,
            status TEXT NOT NULL,
            median_ms REAL,
            created_at TEXT NOT NULL,
            data TEXT NOT NULL
        )""",
    ),
    # 1 -> 2: a record kind (inference, training...) and indexes for history queries.
    (
        "ALTER TABLE records ADD COLUMN kind TEXT NOT NULL DEFAULT 'inference'",
        "CREATE INDEX records_run ON records(run_id)",
        "CREATE INDEX records_config ON records(model, device_type, batch_size, precision)",
    ),
)
LATEST_VERSION = len(MIGRATIONS)


def default_db_path() -> Path:
    """``$DEVICEBENCH_DB`` if set, else ``results.db`` in the user data folder."""
    env = os.environ.get(DB_ENV_VAR)
    if env:
        return Path(env).expanduser()
    return platformdirs.user_data_path("devicebench", appauthor=False) / "results.db"


def _writable(path: Path) -> str | None:
    """Why SQLite could not write ``path`` (it also writes journal files beside it), or ``None``."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # the first existing folder is where new ones would be made
    if path.exists() and not os.access(path, os.W_OK):
        return "the file is read-only"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"its folder {folder} is not writable (SQLite keeps its journal beside the database)"
    return None


class Store:
    """A results database. Use as a context manager, or call :meth:`close`.

    Raises:
        StoreError: the file cannot be opened or is not a devicebench database.
        StoreVersionError: the file was written by a newer devicebench (left untouched).
    """

    def __init__(self, path: str | Path | None = None, *, target_version: int = LATEST_VERSION,
                 readonly: bool = False) -> None:
        """Open (for writing: create) the database at ``path``.

        With ``readonly`` (``history``, ``show``, ``report``, ``compare``) nothing is created:
        a missing file or folder is a one-line error (a mistyped ``--db``), and a database the
        user cannot write is read as it is.
        """
        self.path = Path(path).expanduser() if path is not None else default_db_path()
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a folder, not a results database")
        self.readonly = readonly
        if readonly and path is None and not self.path.exists():
            # the default place ($DEVICEBENCH_DB or the user data folder): nothing stored yet
            raise StoreError(f"no runs yet: run `devicebench run` first (results are stored in {self.path})")
        if readonly and not self.path.is_file():
            raise StoreError(f"no runs stored at {self.path}: there is no results database there (a mistyped --db? "
                             "`devicebench run` creates it)")
        writable = _writable(self.path)
        if not readonly and writable is not None:
            raise StoreError(f"cannot store results in {self.path}: {writable}; use another --db, or --no-db")
        try:
            if not readonly:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            if readonly and writable is not None:
                # Read as it is: no journal or lock file can be made beside it.
                uri = "file:" + urllib.parse.quote(str(self.path.resolve())) + "?mode=ro&immutable=1"
                self._conn = sqlite3.connect(uri, uri=True, timeout=30.0, isolation_level=None)
            else:
                self._conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open results database {self.path}: {exc}") from None
        try:
            self._conn.execute("PRAGMA busy_timeout = 30000")
            # The version and the tables are read in one snapshot: another process may be
            # creating the schema right now (its migration commits both at once), and read
            # apart they could show version 0 with its tables, "another program's database".
            self._conn.execute("BEGIN")
            try:
                version = self._user_version()
                if version > LATEST_VERSION:
                    raise StoreVersionError(
                        f"{self.path} was written by a newer devicebench (schema {version}, this "
                        f"one knows up to {LATEST_VERSION}); it was left untouched: upgrade "
                        "devicebench or use another --db"
                    )
                self._check_tables(version)
            finally:
                self._conn.execute("COMMIT")
            if readonly and writable is not None:
                if version < target_version:
                    raise StoreError(f"{self.path} is from an older devicebench and {writable}, so it cannot be "
                                     "upgraded: make it writable once")
                return
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._migrate(target_version)
        except StoreError:
            self._conn.close()
            raise
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            if "readonly" in str(exc) or "read-only" in str(exc):
                raise StoreError(f"cannot store results in {self.path}: it is read-only ({exc}); use another --db, "
                                 "or --no-db") from None
            raise StoreError(
                f"{self.path} is not a readable devicebench database ({exc}); it was left "
                "untouched: move it away or use another --db"
            ) from None

    # -- schema -----------------------------------------------------------------------
    def _user_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def _check_tables(self, version: int) -> None:
        names = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if version == 0 and names - {"sqlite_sequence"}:
            raise StoreError(
                f"{self.path} is an SQLite database of another program (tables: "
                f"{', '.join(sorted(names))}); it was left untouched: use another --db"
            )
        if version > 0 and not {"runs", "records"} <= names:
            raise StoreError(f"{self.path} is damaged: its runs/records tables are missing")

    @property
    def schema_version(self) -> int:
        return self._user_version()

    def _migrate(self, target: int) -> None:
        # BEGIN IMMEDIATE takes the write lock first, so two processes opening a new file at
        # once migrate it once: the second re-reads the version inside its transaction.
        while True:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                version = self._user_version()
                if version >= target:
                    self._conn.execute("COMMIT")
                    return
                for statement in MIGRATIONS[version]:
                    self._conn.execute(statement)
                self._conn.execute(f"PRAGMA user_version = {version + 1}")
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot write to {self.path}: {exc}") from None
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        else:
            self._conn.execute("COMMIT")

    # -- writing ----------------------------------------------------------------------
    def begin_run(self, run: RunInfo) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO runs (run_id, started_at, finished_at, status, command, tool_version,"
                " hostname, environment) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (run.run_id, run.started_at, run.finished_at, run.status, run.command,
                 run.tool_version, run.hostname, json.dumps(run.environment)),
            )

    def add_record(self, record: StoredRecord) -> None:
        """Insert one record (of any kind) and commit it at once."""
        with self._tx() as db:
            self._insert(db, record)

    def put_record(self, record: StoredRecord) -> None:
        """Insert a record, or replace the stored one with the same ``record_id`` (a training
        record is rewritten after every epoch, so an interrupted run keeps its finished ones)."""
        with self._tx() as db:
            db.execute("DELETE FROM records WHERE record_id = ?", (record.record_id,))
            self._insert(db, record)

    @staticmethod
    def _insert(db: sqlite3.Connection, record: StoredRecord) -> None:
        db.execute(
            "INSERT INTO records (record_id, run_id, kind, model, device_type, device_name,"
            " batch_size, precision, status, median_ms, created_at, data)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (record.record_id, record.run_id, record.kind, record.model, record.device.type,
             record.device.name, record.batch_size, record.precision, record.status,
             record.headline_ms, record.timestamp, json.dumps(record.to_dict())),
        )

    def update_run_environment(self, run_id: str, environment: dict[str, Any]) -> None:
        with self._tx() as db:
            db.execute("UPDATE runs SET environment = ?, hostname = COALESCE(NULLIF(hostname, ''), ?) WHERE run_id = ?",
                       (json.dumps(environment), environment.get("hostname", ""), run_id))

    def finish_run(self, run_id: str, status: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET status = ?, finished_at = ? WHERE run_id = ?",
                (status, utc_now(), run_id),
            )

    # -- reading ----------------------------------------------------------------------
    def _run_from_row(self, row: tuple[Any, ...]) -> RunInfo:
        run_id, started, finished, status, command, version, host, env, count = row
        try:
            environment = json.loads(env) if env else {}
        except ValueError as exc:
            raise StoreError(f"{self.path}: run {run_id} has an unreadable environment (invalid JSON: {exc})") from None
        run = RunInfo(run_id=run_id, command=command, started_at=started, finished_at=finished,
                      status=status, tool_version=version or "", hostname=host or "",
                      environment=environment if isinstance(environment, dict) else {}, n_records=count)
        try:
            check_fields(run, "run")
        except ValueError as exc:
            raise StoreError(f"{self.path}: run {str(run_id)[:40]} is not a valid run: {first_line(exc)}") from None
        return run

    _RUN_QUERY = (
        "SELECT r.run_id, r.started_at, r.finished_at, r.status, r.command, r.tool_version,"
        " r.hostname, r.environment, (SELECT COUNT(*) FROM records c WHERE c.run_id = r.run_id)"
        " FROM runs r"
    )

    def runs(self, limit: int | None = None) -> list[RunInfo]:
        """Runs, newest first."""
        query = self._RUN_QUERY + " ORDER BY r.started_at DESC, r.rowid DESC"
        params: tuple[Any, ...] = ()
        if limit is not None:
            query += " LIMIT ?"
            params = (limit,)
        try:
            return [self._run_from_row(row) for row in self._conn.execute(query, params)]
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot read {self.path}: {exc}") from None

    def find_run(self, ref: str) -> RunInfo:
        """A run by id, unique id prefix, or ``last``.

        Raises:
            RunNotFoundError: no run (or several) match.
        """
        if ref in ("last", "latest", "--last"):
            found = self.runs(limit=1)
            if not found:
                raise RunNotFoundError(f"no runs in {self.path} yet: run `devicebench run` first")
            return found[0]
        exact = self._conn.execute(self._RUN_QUERY + " WHERE r.run_id = ?", (ref,)).fetchall()
        if exact:
            return self._run_from_row(exact[0])
        # A prefix, taken literally: % and _ are LIKE wildcards, escaped here.
        pattern = ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self._conn.execute(
            self._RUN_QUERY + " WHERE r.run_id LIKE ? ESCAPE '\\' ORDER BY r.started_at DESC", (pattern,),
        ).fetchall()
        if not rows:
            raise RunNotFoundError(f"no run {ref!r} in {self.path} (see `devicebench history`)")
        if len(rows) > 1:
            raise RunNotFoundError(
                f"{ref!r} matches {len(rows)} runs ({', '.join(r[0] for r in rows[:4])}...): "
                "give more of the id"
            )
        return self._run_from_row(rows[0])

    def records(self, run_id: str, kind: str = "inference") -> list[InferenceRecord]:
        """The records of a run, in the order they were measured."""
        rows = self._conn.execute(
            "SELECT data FROM records WHERE run_id = ? AND kind = ? ORDER BY id", (run_id, kind)
        ).fetchall()
        out = []
        for i, data in enumerate(self._row_dicts(run_id, rows)):
            try:
                record = InferenceRecord.from_dict(data)
                check_fields(record, f"record {i}")
            except (KeyError, TypeError, ValueError, AttributeError, UserError) as exc:
                raise StoreError(f"{self.path}: run {run_id} has an invalid record: {first_line(exc)}") from None
            out.append(record)
        return out

    def _row_dicts(self, run_id: str, rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
        """The JSON objects of stored rows (one unreadable row is a one-line error)."""
        out = []
        for i, row in enumerate(rows):
            try:
                data = json.loads(row[0])
            except (TypeError, ValueError) as exc:
                raise StoreError(f"{self.path}: record {i} of run {run_id} is not valid JSON ({exc}); "
                                 "the database was changed by something else than devicebench") from None
            if not isinstance(data, dict):
                raise StoreError(f"{self.path}: record {i} of run {run_id} is not a JSON object")
            out.append(data)
        return out

    def raw_records(self, run_id: str, kind: str | None) -> list[dict[str, Any]]:
        """Records of one kind as plain dicts (for record kinds added by later stages);
        ``kind=None``: every record of the run, of every kind, in the order they were stored,
        each with its ``kind``."""
        if kind is not None:
            rows = self._conn.execute(
                "SELECT data FROM records WHERE run_id = ? AND kind = ? ORDER BY id", (run_id, kind)
            ).fetchall()
            return self._row_dicts(run_id, rows)
        rows = self._conn.execute("SELECT data, kind FROM records WHERE run_id = ? ORDER BY id", (run_id,)).fetchall()
        return [{**data, "kind": row[1]} for data, row in zip(self._row_dicts(run_id, rows), rows)]

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
