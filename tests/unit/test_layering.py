"""The package's stages import one way: each imports only the stages before it.

devices -> workloads -> measure -> results -> launchers -> run -> reports -> api -> cli,
with errors.py and _version.py below them all. Every import counts, the ones inside
functions and under ``TYPE_CHECKING`` included: a lazy import that runs back up the stages
is still an edge that runs back.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import devicebench

PACKAGE = Path(devicebench.__file__).parent

#: Stage of each top-level module or sub-package; a module may import its own stage and
#: any lower one.
STAGES = {
    "_version": 0,
    "errors": 0,
    "devices": 1,
    "workloads": 2,
    "measure": 3,
    "results": 4,
    "launchers": 5,
    "run": 6,
    "reports": 7,
    "api": 8,
    "cli": 9,
    "__init__": 10,  # the public API: lazy re-exports of the stages below
    "__main__": 10,
}


def _stage_of(module: str) -> tuple[str, int]:
    """``devicebench.run.training`` -> ("run", 6)."""
    parts = module.split(".")
    assert parts[0] == "devicebench", module
    top = parts[1] if len(parts) > 1 else "__init__"
    if top not in STAGES:
        raise AssertionError(f"devicebench.{top} belongs to no stage: add it to STAGES (and the README's Layout)")
    return top, STAGES[top]


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1 and parts[:-1] != ["devicebench"]:
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    """Every devicebench module ``path`` imports, with its line number."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "devicebench"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "devicebench":
                continue
            if target == "devicebench":  # from devicebench import X: X may be a sub-package
                found += [(node.lineno, f"devicebench.{a.name}") for a in node.names
                          if f"{a.name}" in STAGES or (PACKAGE / a.name).is_dir()]
                found += [(node.lineno, "devicebench") for a in node.names
                          if not (a.name in STAGES or (PACKAGE / a.name).is_dir())]
            else:
                found.append((node.lineno, target))
    return found


def _edges() -> list[tuple[str, int, str, str]]:
    edges = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        for line, target in _imports(path, module):
            edges.append((str(path.relative_to(PACKAGE)), line, module, target))
    return edges


def test_every_module_belongs_to_a_stage() -> None:
    for path in PACKAGE.rglob("*.py"):
        _stage_of(_module_name(path))


def test_no_import_runs_back_up_the_stages() -> None:
    backward = []
    for where, line, module, target in _edges():
        (top, stage), (target_top, target_stage) = _stage_of(module), _stage_of(target)
        if target_stage > stage:
            backward.append(f"{where}:{line}: {top} (stage {stage}) imports {target} ({target_top}, stage {target_stage})")
    assert not backward, "imports that run back up the stages:\n" + "\n".join(backward)


def test_nothing_below_run_draws_or_stores() -> None:
    """Measurement and launching never touch the terminal (rich) or the store: the run stage
    persists, the CLI draws."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        top, stage = _stage_of(module)
        if stage > STAGES["launchers"] or top == "results":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                if name.split(".")[0] == "rich" or name == "devicebench.results.store":
                    offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {name}")
    assert not offenders, "\n".join(offenders)


def test_the_walker_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    # The check above would pass vacuously if the walker missed imports inside functions.
    src = tmp_path / "devicebench" / "measure"
    src.mkdir(parents=True)
    (src / "x.py").write_text("def f():\n    from devicebench.cli import main\n    from ..run import training\n")
    module = "devicebench.measure.x"
    found = {t for _, t in _imports(src / "x.py", module)}
    assert found == {"devicebench.cli", "devicebench.run"}


@pytest.mark.parametrize("stage", ["devices", "workloads", "measure", "results", "launchers", "run", "reports", "cli"])
def test_each_stage_exists(stage: str) -> None:
    assert (PACKAGE / stage).is_dir(), f"devicebench/{stage}/ is missing"
