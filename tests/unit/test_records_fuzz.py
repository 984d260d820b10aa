"""A results file is a file a user hands us: whatever a record's parts hold, reading it back
gives records or one UserError, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from devicebench.errors import UserError
from devicebench.results.jsonio import read_json, run_document
from devicebench.results.records import RunInfo

from report_fixtures import inference

PART_KEYS = ("cold_start", "memory", "energy", "sustained", "parity", "tuning", "transfer_ms", "timing",
             "latency_ms", "e2e_latency_ms", "device", "environment", "model_file", "samples_ms")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


def _document() -> dict:
    record = inference("resnet50", "cpu", 1, 50.0).to_dict()
    return run_document(RunInfo(run_id="r", command="test"), [], partial=False) | {"records": [record]}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(PART_KEYS), value=json_values, inner=st.booleans())
@example(key="timing", value=-1, inner=True)  # a timing policy out of range: its ConfigError names the file
def test_any_value_in_a_part_reads_or_is_one_user_error(tmp_path: Path, key: str, value: object, inner: bool) -> None:
    doc = _document()
    record = doc["records"][0]
    if inner and isinstance(record.get(key), dict) and record[key]:
        part = record[key]
        first = next(iter(part))  # a wrong value inside the part, not the part itself
        if isinstance(part[first], dict) and part[first]:
            part = part[first]  # one level deeper (timing's policy)
            first = next(iter(part))
        part[first] = value
    else:
        record[key] = value
    path = tmp_path / "fuzz.json"
    path.write_text(json.dumps(doc))
    try:
        run, records = read_json(path)
    except UserError as exc:
        assert str(path) in str(exc)
    else:
        assert run.run_id == "r" and len(records) == 1
