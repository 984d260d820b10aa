"""Fuzzing as a habit (issue 12): every loader and reader of a file a user hands us, fed
truncated, random, duplicated-member and wrong-type input. The outcome is a result or one
UserError (one line), never a traceback, a hang, or code run (a marker file proves the last).

Kept small (``max_examples``) so that the whole file runs in well under a minute in CI.
"""

from __future__ import annotations

import io
import json
import pickle
import sqlite3
import struct
import warnings
import zipfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from report_fixtures import inference

from devicebench.errors import UserError
from devicebench.results.jsonio import read_json, run_document
from devicebench.results.records import RunInfo
from devicebench.results.store import Store
from devicebench.workloads.userfile import (
    UserModelSpec,
    load_user_model,
    resolve_user_model,
)

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
MARKER_NAME = "PWNED"


class Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


@pytest.fixture(scope="module")
def genuine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("genuine")
    model = torch.nn.Sequential(torch.nn.Linear(4, 3)).eval()
    x = torch.randn(1, 4)
    out: dict[str, bytes] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(model, x), str(folder / "m.ts"))
        torch.export.save(torch.export.export(model, (x,)), str(folder / "m.pt2"))
    torch.save(model.state_dict(), folder / "m.pth")
    from safetensors.torch import save_file

    save_file(model.state_dict(), str(folder / "m.safetensors"))
    for name in ("m.ts", "m.pt2", "m.pth", "m.safetensors"):
        out[name] = (folder / name).read_bytes()
    return out


def _outcome(path: Path, marker: Path) -> None:
    """Resolve then load ``path``: a result or one UserError; never code run."""
    try:
        spec = resolve_user_model(UserModelSpec(str(path), input_shapes=((1, 4),), arch=None))
        load_user_model(spec)
    except UserError as exc:
        assert str(exc) and "\n" not in str(exc), str(exc)
    assert not marker.exists(), "code in the file ran"


def _rezip(data: bytes, edit) -> bytes:  # type: ignore[no-untyped-def]
    src = zipfile.ZipFile(io.BytesIO(data))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as dst, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are the point
        edit(src, dst)
    return buf.getvalue()


@FUZZ
@given(name=st.sampled_from(["m.ts", "m.pt2", "m.pth", "m.safetensors"]), cut=st.floats(0.0, 1.0),
       flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), max_size=4))
@example(name="m.pt2", cut=1.0, flips=[])  # the genuine files load: the harness itself works
@example(name="m.ts", cut=1.0, flips=[])
@example(name="m.safetensors", cut=1.0, flips=[(0.5, 0)])
def test_truncated_or_flipped_model_files(tmp_path_factory, genuine, name: str, cut: float,  # type: ignore[no-untyped-def]
                                          flips: list[tuple[float, int]]) -> None:
    folder = tmp_path_factory.mktemp("f")
    data = bytearray(genuine[name][: max(1, int(len(genuine[name]) * cut))] if cut < 0.999 else genuine[name])
    for where, byte in flips:
        data[min(len(data) - 1, int(len(data) * where))] = byte
    path = folder / name
    path.write_bytes(bytes(data))
    _outcome(path, folder / MARKER_NAME)
    if bytes(data) == genuine[name] and name in ("m.pt2", "m.ts"):
        load_user_model(resolve_user_model(UserModelSpec(str(path), input_shapes=((1, 4),))))


@FUZZ
@given(name=st.sampled_from(["m.ts", "m.pt2", "m.pth"]), pick=st.integers(0, 100), case=st.booleans(),
       payload=st.sampled_from(["pickle", "json", "random"]), first=st.booleans())
def test_duplicated_or_case_variant_members(tmp_path_factory, genuine, name: str, pick: int, case: bool,  # type: ignore[no-untyped-def]
                                            payload: str, first: bool) -> None:
    folder = tmp_path_factory.mktemp("d")
    marker = folder / MARKER_NAME
    members = zipfile.ZipFile(io.BytesIO(genuine[name])).namelist()
    target = members[pick % len(members)]
    prefix, _, rest = target.partition("/")
    twin = f"{prefix}/{rest.swapcase() if case and rest.swapcase() != rest else rest}"
    body = {"pickle": pickle.dumps(Evil(str(marker))),
            "json": json.dumps({"config": {"w": {"use_pickle": False, "path_name": "weight_0"}}}).encode(),
            "random": bytes(range(256))}[payload]

    def edit(src: zipfile.ZipFile, dst: zipfile.ZipFile) -> None:
        if first:
            dst.writestr(twin, body)
        for item in src.infolist():
            dst.writestr(item, src.read(item.filename))
        if not first:
            dst.writestr(twin, body)

    path = folder / name
    path.write_bytes(_rezip(genuine[name], edit))
    with pytest.raises(UserError, match="two members"):
        resolve_user_model(UserModelSpec(str(path), input_shapes=((1, 4),)))
    assert not marker.exists()


header_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**64, 2**64) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)


@FUZZ
@given(header=st.dictionaries(st.text(max_size=8), header_values, max_size=3), length_delta=st.integers(-20, 20),
       huge=st.booleans(), tail=st.binary(max_size=64))
def test_safetensors_headers(tmp_path_factory, header: dict, length_delta: int, huge: bool, tail: bytes) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("s")
    raw = json.dumps(header).encode()
    length = 2**62 if huge else max(0, len(raw) + length_delta)
    path = folder / "w.safetensors"
    path.write_bytes(struct.pack("<Q", length) + raw + tail)
    try:
        resolve_user_model(UserModelSpec(str(path), arch="tinycnn-tiny"))
    except UserError as exc:
        assert "\n" not in str(exc)


@FUZZ
@given(members=st.lists(st.tuples(st.sampled_from(["tiny/wnids.txt", "tiny/train/n1/images/a.JPEG",
                                                   "tiny/train/N1/images/a.jpeg", "tiny/val/val_annotations.txt",
                                                   "../evil.txt", "/abs.txt", "cls/a.png", "CLS/a.png", "x"]),
                                  st.binary(max_size=40)), max_size=6),
       truncate=st.booleans())
def test_dataset_zips(tmp_path_factory, members: list[tuple[str, bytes]], truncate: bool) -> None:  # type: ignore[no-untyped-def]
    from devicebench.workloads.datasets import open_dataset
    from devicebench.workloads.download import _extract

    folder = tmp_path_factory.mktemp("z")
    archive = folder / "set.zip"
    with zipfile.ZipFile(archive, "w") as z, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, data in members:
            z.writestr(name, data)
    if truncate:
        archive.write_bytes(archive.read_bytes()[: max(4, archive.stat().st_size // 2)])
    for read in (lambda: open_dataset(archive), lambda: _extract(archive, folder / "out")):
        try:
            read()
        except UserError as exc:
            assert "\n" not in str(exc)
    assert not (folder / "evil.txt").exists() and not (folder.parent / "evil.txt").exists()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@FUZZ
@given(key=st.sampled_from(["run", "records", "schema_version", "tool"]), value=json_values,
       record_key=st.sampled_from(["device", "batch_size", "status", "samples_ms", "kind", "latency_ms", None]))
def test_results_documents_of_any_shape(tmp_path_factory, key: str, value: object, record_key: str | None) -> None:  # type: ignore[no-untyped-def]
    doc = run_document(RunInfo(run_id="r", command="t"), [inference("m", "cpu", 1, 5.0)])
    if record_key is None:
        doc[key] = value
    else:
        doc["records"][0][record_key] = value
    path = tmp_path_factory.mktemp("j") / "r.json"
    path.write_text(json.dumps(doc))
    try:
        read_json(path)
    except UserError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)


@FUZZ
@given(data=st.one_of(st.text(max_size=30), json_values.map(json.dumps)), env=st.one_of(st.text(max_size=10),
                                                                                        json_values.map(json.dumps)))
def test_store_rows_of_any_content(tmp_path_factory, data: str, env: str) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path_factory.mktemp("db") / "r.db"
    with Store(db) as store:
        store.begin_run(RunInfo(run_id="r", command="t"))
        store.add_record(inference("m", "cpu", 1, 5.0))
        store._conn.execute("UPDATE records SET data = ?", (data,))
        store._conn.execute("UPDATE runs SET environment = ?", (env,))
    for read in (lambda s: s.runs(), lambda s: s.find_run("r"), lambda s: s.records("r"),
                 lambda s: s.raw_records("r", "training")):
        try:
            with Store(db, readonly=True) as store:
                read(store)
        except UserError as exc:
            assert "\n" not in str(exc)


def test_sqlite_garbage_is_one_line(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    sqlite3.connect(db).close()
    db.write_bytes(b"SQLite format 3\x00" + bytes(200))
    with pytest.raises(UserError):
        Store(db, readonly=True).runs()


def test_a_zip_whose_directory_is_cut_after_a_valid_end_record_is_one_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Found by test_dataset_zips: is_zipfile() accepts it (an end record in a member's bytes),
    # opening it raised zipfile.BadZipFile ("Bad offset for central directory").
    from devicebench.workloads.datasets import open_dataset

    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as z, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        z.writestr("tiny/wnids.txt", b"PK\x05\x06")
        z.writestr("tiny/wnids.txt", b"")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(UserError) as info:
        open_dataset(archive)
    assert "\n" not in str(info.value)
