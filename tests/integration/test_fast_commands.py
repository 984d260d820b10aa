"""Read commands start fast: ``history``, ``show``, ``compare``, ``report``, ``models`` and
``--help`` never import torch (issue 14, point 1).

Each command runs in its own interpreter with ``-X importtime``, whose report names every
module the command imported; torch (and, for the lightest commands, numpy) must not be
among them. A store with two real runs is written first so that ``show``, ``report`` and
``compare`` render their full tables, not an early "no runs" message.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli_env

from devicebench.results.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from report_fixtures import fixed_run

RUN_A, RUN_B = "20261128-000000-aaaaaa", "20261128-000001-bbbbbb"


@pytest.fixture(scope="module")
def store_with_two_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fast") / "results.db"
    with Store(path) as store:
        for run_id in (RUN_A, RUN_B):
            run, records = fixed_run()
            run = dataclasses.replace(run, run_id=run_id)
            store.begin_run(run)
            for record in records:
                store.put_record(dataclasses.replace(record, run_id=run_id))
            store.finish_run(run_id, "complete")
    return path


def imported_modules(args: list[str], db: Path, tmp_path: Path) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    """Run ``python -X importtime -m devicebench ARGS``; the top-level names it imported."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "devicebench", *args], check=False,
                          capture_output=True, text=True, timeout=120, cwd=tmp_path, stdin=subprocess.DEVNULL,
                          env=cli_env(DEVICEBENCH_DB=str(db), COLUMNS="120"))
    names = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*([\w.]+)\s*$", done.stderr, flags=re.MULTILINE))
    assert names, "no -X importtime report: the check would prove nothing"
    return {n.split(".")[0] for n in names}, done


HEAVY = ["torch", "torchvision", "transformers", "matplotlib", "onnxruntime"]
#: The lightest commands import no numerical library at all.
LIGHT = [*HEAVY, "scipy", "numpy"]


@pytest.mark.parametrize(
    ("args", "banned"),
    [
        (["--help"], LIGHT),
        (["models"], LIGHT),
        (["history"], LIGHT),
        (["show", RUN_A], HEAVY),  # the speedup's bootstrap interval needs numpy
        (["show", "last", "--json", "-"], HEAVY),
        (["report", RUN_A, "--md", "-"], HEAVY),
        (["compare", RUN_A, RUN_B], LIGHT),  # U test and bootstrap in plain Python
    ],
    ids=["help", "models", "history", "show", "show-json", "report-md", "compare"],
)
def test_read_commands_never_import_torch(args: list[str], banned: list[str], store_with_two_runs: Path,
                                          tmp_path: Path) -> None:
    names, done = imported_modules(args, store_with_two_runs, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "devicebench" in names  # the command really ran
    assert not names & set(banned), f"{' '.join(args)} imported {sorted(names & set(banned))}"


def test_read_commands_render_the_run_they_read(store_with_two_runs: Path, tmp_path: Path) -> None:
    # The light path is the real one: the tables are there.
    _, done = imported_modules(["show", RUN_A], store_with_two_runs, tmp_path)
    assert "resnet50" in done.stdout and "bert-base" in done.stdout
    _, done = imported_modules(["models"], store_with_two_runs, tmp_path)
    for name in ("resnet50", "bert-base", "tinycnn-tiny", "resnet18"):
        assert name in done.stdout


def test_devices_imports_torch_in_its_own_process(tmp_path: Path, store_with_two_runs: Path) -> None:
    # `devices` must ask torch, and does so in this one process (no worker is started).
    names, done = imported_modules(["devices"], store_with_two_runs, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "torch" in names
    assert "devicebench.launchers" not in done.stderr


def test_model_listing_needs_no_torch() -> None:
    # The registry's metadata (names, inputs, batch sizes, descriptions) is static: reading
    # it in a fresh interpreter imports no torch.
    code = ("import sys; from devicebench.workloads.registry import list_models; import devicebench.workloads; "
            "names = [e.name for e in list_models()]; "
            "assert 'resnet50' in names and 'bert-base' in names, names; "
            "assert [e.input.shapes(2) for e in list_models() if e.name == 'bert-base'] == [[[2, 128]] * 3]; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy', 'torchvision')))")
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120, env=cli_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
