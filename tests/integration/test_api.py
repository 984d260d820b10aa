"""The Python API: compare() on an nn.Module (in process and through a worker), on a file,
and the results object in a terminal, in Jupyter, in pandas, in the store."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import devicebench as db
from devicebench.errors import InputShapeError
from conftest import ROOT, cli_env


def _tiny() -> nn.Module:
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4)).eval()


def test_compare_in_process_renders_everywhere_and_saves(tmp_path: Path) -> None:
    model = _tiny()
    before = [p.clone() for p in model.parameters()]
    seen = []
    results = db.compare(model, torch.randn(1, 16), devices="cpu", batch_sizes=[1, 4], isolate=False,
                         quick=True, max_time=0.2, name="mlp", on_record=seen.append)
    assert isinstance(results, db.Results) and results.ok and len(results) == 2 and len(seen) == 2
    assert [r.batch_size for r in results] == [1, 4]
    assert results[1].input_shape == [[4, 16]]
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # the caller's model untouched
    text = str(results)
    assert "Inference time per batch" in text and "mlp" in text and "no GPU found" in text
    html = results._repr_html_()
    assert html.count("<tr>") == 3 and "<table" in html and "mlp" in html
    frame = results.to_pandas()
    assert list(frame["batch_size"]) == [1, 4] and frame["median_ms"].notna().all()
    saved = results.save(tmp_path / "api.db")
    results.save(tmp_path / "api.db")  # twice: no duplicate
    with db_store(saved) as store:
        (run,) = store.runs()
        assert [r.record_id for r in store.records(run.run_id)] == [r.record_id for r in results]
    results.to_json(tmp_path / "api.json")
    run, records = db.load_results(tmp_path / "api.json")
    assert run.run_id == results.run.run_id and len(records) == 2


def db_store(path: Path):  # type: ignore[no-untyped-def]
    from devicebench.results.store import Store

    return Store(path)


def test_compare_a_model_file_with_an_example_input(tmp_path: Path) -> None:
    import warnings

    model = _tiny()
    path = tmp_path / "mlp.ts"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(model, torch.randn(1, 16)), str(path))
    with pytest.raises(InputShapeError, match="--input-shape"):
        db.compare(path, devices="cpu")
    results = db.compare(path, devices="cpu", input_shape=(2, 16), quick=True, max_time=0.2, db=tmp_path / "f.db")
    assert results.ok and results[0].batch_size == 2
    assert results[0].model_file["format"] == "torchscript"
    assert results.saved_to == [tmp_path / "f.db"]


def test_compare_needs_inputs_for_a_module() -> None:
    with pytest.raises(InputShapeError, match="example_inputs"):
        db.compare(_tiny(), devices="cpu")


def test_example_script_runs_on_a_tiny_setting(tmp_path: Path) -> None:
    out = tmp_path / "example.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "compare_own_model.py"), "--quick", "--max-time", "0.2",
         "--devices", "cpu", "--batch-sizes", "1,2", "--json", str(out)],
        capture_output=True, text=True, timeout=300, env=cli_env(), cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "SmallCNN" in proc.stdout and "Inference time per batch" in proc.stdout
    records = json.loads(out.read_text())["records"]
    assert [r["status"] for r in records] == ["ok", "ok"] and [r["batch_size"] for r in records] == [1, 2]
    # The module was sent to the workers as a torch.export program (batch 2 through a dynamic dimension).
    assert records[0]["model_file"]["format"] == "export"
    assert records[0]["model_file"]["path"] == "<in-memory SmallCNN>"
    assert "torch.export" in records[0]["model_file"]["note"]


def test_example_notebook_is_valid() -> None:
    notebook = json.loads((ROOT / "examples" / "compare_own_model.ipynb").read_text())
    assert notebook["nbformat"] == 4
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert any("db.compare(" in "".join(c["source"]) for c in code)
    for cell in code:
        ast.parse("".join(cell["source"]))
