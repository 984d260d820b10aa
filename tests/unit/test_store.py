"""The SQLite store: migrations from an older schema, refusals, lookups."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from devicebench.errors import RunNotFoundError, StoreError, StoreVersionError
from devicebench.measure.stats import Summary
from devicebench.results.records import DeviceRef, InferenceRecord, RunInfo, TrainingRecord, EpochRow
from devicebench.results.store import LATEST_VERSION, MIGRATIONS, Store


def _record(run_id: str, median: float = 10.0, model: str = "tinycnn-tiny") -> InferenceRecord:
    samples = [median * (1 + 0.01 * (i % 3)) for i in range(20)]
    return InferenceRecord(
        run_id=run_id, model=model, device=DeviceRef("cpu", None, "Test CPU"), batch_size=1,
        precision="fp32", status="ok", samples_ms=samples, latency_ms=Summary.from_samples(samples),
    )


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_records_round_trip(db_path: Path) -> None:
    with Store(db_path) as store:
        store.begin_run(RunInfo(run_id="r1", command="test"))
        rec = _record("r1")
        store.add_record(rec)
        store.finish_run("r1", "complete")
        run = store.find_run("r1")
        assert run.status == "complete" and run.n_records == 1 and run.finished_at
        (back,) = store.records("r1")
    assert back.to_dict() == rec.to_dict()
    assert back.latency_ms == rec.latency_ms


def test_training_records_share_the_store(db_path: Path) -> None:
    row = EpochRow(1, 2.3, 0.1, 2.2, 0.12, 0.5, 3.0, 100.0, 0.5, 2.5, 3.0)
    rec = TrainingRecord(run_id="r1", model="tinycnn", device=DeviceRef("cpu", None, "cpu"),
                         batch_size=32, precision="fp32", status="ok", epochs=[row])
    with Store(db_path) as store:
        store.begin_run(RunInfo(run_id="r1", command="test"))
        store.add_record(rec)
        assert store.records("r1") == []  # inference records only
        (raw,) = store.raw_records("r1", "training")
    assert TrainingRecord.from_dict(raw) == rec


def test_migrates_a_version_1_database_and_keeps_its_data(db_path: Path) -> None:
    with Store(db_path, target_version=1) as old:
        assert old.schema_version == 1
        old.begin_run(RunInfo(run_id="old-run", command="v1"))
        rec = _record("old-run")
        # Version 1 had no `kind` column: insert as that version's code did.
        old._conn.execute(
            "INSERT INTO records (record_id, run_id, model, device_type, device_name, batch_size,"
            " precision, status, median_ms, created_at, data) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (rec.record_id, "old-run", rec.model, "cpu", "Test CPU", 1, "fp32", "ok", 10.0,
             rec.timestamp, json.dumps(rec.to_dict())),
        )
    with Store(db_path) as store:
        assert store.schema_version == LATEST_VERSION == len(MIGRATIONS)
        (back,) = store.records("old-run")
        assert back.record_id == rec.record_id
        store.add_record(_record("old-run", model="resnet50-tiny"))
        assert store.find_run("old-run").n_records == 2


def test_a_newer_database_is_reported_and_left_untouched(db_path: Path) -> None:
    with Store(db_path) as store:
        store.begin_run(RunInfo(run_id="r1", command="x"))
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    conn.commit()
    conn.close()
    before = _sha(db_path)
    with pytest.raises(StoreVersionError, match="newer devicebench"):
        Store(db_path)
    assert _sha(db_path) == before


@pytest.mark.parametrize("content", [b"", b"not a database at all" * 100, b"SQLite format 3\x00" + b"\xff" * 4000])
def test_a_corrupt_file_is_reported_and_left_untouched(db_path: Path, content: bytes) -> None:
    db_path.write_bytes(content)
    if not content:
        # An empty file is a valid new database for SQLite: it is initialised and usable.
        with Store(db_path) as store:
            store.begin_run(RunInfo(run_id="r-empty", command="x"))
        assert db_path.read_bytes().startswith(b"SQLite format 3\x00")
        with Store(db_path) as store:
            assert [r.run_id for r in store.runs()] == ["r-empty"]
        return
    before = _sha(db_path)
    with pytest.raises(StoreError):
        Store(db_path)
    assert _sha(db_path) == before


def test_another_programs_database_is_refused(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE photos (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="another program"):
        Store(db_path)


def test_a_folder_is_not_a_database(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="folder"):
        Store(tmp_path)


def test_find_run_by_prefix_last_and_ambiguity(db_path: Path) -> None:
    with Store(db_path) as store:
        for run_id, started in [("20260101-aaa", "2026-01-01T00:00:00+00:00"),
                                ("20260102-bbb", "2026-01-02T00:00:00+00:00")]:
            store.begin_run(RunInfo(run_id=run_id, command="x", started_at=started))
        assert store.find_run("last").run_id == "20260102-bbb"
        assert store.find_run("20260101").run_id == "20260101-aaa"
        with pytest.raises(RunNotFoundError, match="matches 2 runs"):
            store.find_run("2026")
        with pytest.raises(RunNotFoundError):
            store.find_run("nope")
        assert [r.run_id for r in store.runs()] == ["20260102-bbb", "20260101-aaa"]


def test_each_record_is_committed_at_once(db_path: Path) -> None:
    store = Store(db_path)
    store.begin_run(RunInfo(run_id="r1", command="x"))
    store.add_record(_record("r1"))
    # A second connection (another process) sees it before the run finishes.
    with Store(db_path) as other:
        assert len(other.records("r1")) == 1
        assert other.find_run("r1").status == "running"
    store.close()


def test_the_run_takes_its_hostname_from_the_first_environment(db_path: Path) -> None:
    with Store(db_path) as store:
        store.begin_run(RunInfo(run_id="r1", command="x"))
        assert store.find_run("r1").hostname == ""
        store.update_run_environment("r1", {"hostname": "bench-box", "cpu": {}})
        run = store.find_run("r1")
    assert run.hostname == "bench-box" and run.environment["hostname"] == "bench-box"


# -- hostile stores and hands (issue 12) -------------------------------------------------

def test_show_matches_the_exact_run_id_and_takes_a_prefix_literally(db_path: Path) -> None:
    with Store(db_path) as store:
        for run_id in ("20260101-000000-abc123", "x_y"):
            store.begin_run(RunInfo(run_id=run_id, command="test"))
        for ref in ("___", "%", "2026_", "x%"):  # LIKE wildcards match nothing here
            with pytest.raises(RunNotFoundError):
                store.find_run(ref)
        assert store.find_run("x_y").run_id == "x_y"
        assert store.find_run("x_").run_id == "x_y"
        assert store.find_run("20260101").run_id == "20260101-000000-abc123"


def test_read_commands_create_no_folder_and_no_database(tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "results.db"
    with pytest.raises(StoreError, match="no runs stored at .*mistyped --db") as info:
        Store(missing, readonly=True)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "typo").exists()
    with pytest.raises(StoreError):
        Store(tmp_path / "nothing.db", readonly=True)
    assert not (tmp_path / "nothing.db").exists()


def test_a_read_only_database_is_read_and_refused_for_writing_with_the_right_words(
        db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Store(db_path) as store:
        store.begin_run(RunInfo(run_id="r1", command="test"))
        store.add_record(_record("r1"))
    import os

    real_access = os.access
    # As a user without write permission (tests may run as root, whom chmod does not stop).
    monkeypatch.setattr(os, "access", lambda p, mode: False if mode & os.W_OK else real_access(p, mode))
    with Store(db_path, readonly=True) as store:
        assert len(store.records("r1")) == 1
    with pytest.raises(StoreError, match="read-only.*another --db") as info:
        Store(db_path)
    assert "move it away" not in str(info.value) and "\n" not in str(info.value)
    monkeypatch.setattr(os, "access", lambda p, mode: False if mode & os.W_OK and Path(p).is_dir()
                        else real_access(p, mode))
    with pytest.raises(StoreError, match="folder .* is not writable") as info:
        Store(db_path)
    assert "unreadable" not in str(info.value) and "move it away" not in str(info.value)


@pytest.mark.parametrize("data", ["{not json", "[1, 2]",
                                  json.dumps({"latency_ms": {"n": "<img src=x onerror=alert(1)>"}})])
def test_a_store_row_that_is_not_a_valid_record_is_one_line(db_path: Path, data: str) -> None:
    with Store(db_path) as store:
        store.begin_run(RunInfo(run_id="r1", command="test"))
        rec = _record("r1")
        store.add_record(rec)
        if data.startswith("{\"latency"):
            doc = rec.to_dict()
            doc["latency_ms"]["n"] = json.loads(data)["latency_ms"]["n"]
            data = json.dumps(doc)
        store._conn.execute("UPDATE records SET data = ?", (data,))
        with pytest.raises(StoreError) as info:
            store.records("r1")
    message = str(info.value)
    assert "\n" not in message and "r1" in message
    if "latency" in data:
        assert "latency_ms.n" in message


def test_no_database_at_the_default_path_means_no_runs_yet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVICEBENCH_DB", str(tmp_path / "new" / "results.db"))
    with pytest.raises(StoreError, match=r"^no runs yet: run `devicebench run` first \(results are stored in .*new") as info:
        Store(None, readonly=True)
    assert "\n" not in str(info.value) and info.value.exit_code == 2
    assert not (tmp_path / "new").exists()


def test_a_schema_created_by_another_process_while_opening_is_not_another_programs(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Two processes opening a new database at once: one read the version (0), the other then
    created the tables, and the first, reading the tables apart, called the file "an SQLite
    database of another program" (seen in tests/integration/test_nothing_lost.py under load).
    Version and tables are now read in one snapshot, which another writer cannot change."""
    import sqlite3

    from devicebench.results import store as store_mod

    db = tmp_path / "new.db"
    original = store_mod.Store._user_version
    outcome: list[str] = []

    def version_then_another_process_migrates(self):  # type: ignore[no-untyped-def]
        version = original(self)
        if not outcome:  # once, between the version and the tables: another process migrates
            other = sqlite3.connect(db, timeout=0.3, isolation_level=None)
            try:
                other.execute("BEGIN IMMEDIATE")
                for statement in store_mod.MIGRATIONS[0]:
                    other.execute(statement)
                other.execute("PRAGMA user_version = 1")
                other.execute("COMMIT")
                outcome.append("committed inside the snapshot")
            except sqlite3.OperationalError as exc:  # the snapshot holds: it must wait
                outcome.append(f"waited: {exc}")
            finally:
                other.close()
        return version

    monkeypatch.setattr(store_mod.Store, "_user_version", version_then_another_process_migrates)
    with store_mod.Store(db) as store:  # neither "another program" nor any other error
        assert store.runs() == []
    assert outcome and outcome[0].startswith("waited"), outcome
