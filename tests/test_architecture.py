"""The layout is the architecture: imports only go down, nothing cycles, views need no torch."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import optuna
import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = str(Path(sys.executable).parent / "lint-imports")
MAX_FUNCTION_LINES = 60  # a function that fits one screen


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [LINT, "--no-cache"],
        cwd=cwd,
        env={"PYTHONPATH": str(cwd), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_import_contracts_in_pyproject_hold():
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 kept, 0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("engine/model.py", "import optuna", "The engine is pure PyTorch"),
        ("engine/train.py", "from search.tasks.mlp import vocabulary", "Imports go down"),
        ("study/queue/claims.py", "from search.views import summary", "Imports go down"),
        ("views/summary.py", "import torch", "import no torch"),
    ],
)
def test_a_wrong_import_breaks_its_contract(module, line, contract, tmp_path):
    shutil.copytree(ROOT / "search", tmp_path / "search")
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    target = tmp_path / "search" / module
    target.write_text(target.read_text() + f"\n{line}\n")
    done = lint_imports(tmp_path)
    assert done.returncode == 1, done.stdout
    broken = [s for s in done.stdout.splitlines() if s.endswith("BROKEN")]
    assert len(broken) == 1 and contract in broken[0], done.stdout


def find_cycle(graph: grimp.ImportGraph) -> list[str] | None:
    """A chain of modules that imports its own start, or None."""
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = "open"
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if state.get(imported) == "open":
                return [*path[path.index(imported) :], imported]
            if imported not in state and (found := visit(imported, [*path, imported])):
                return found
        state[module] = "done"
        return None

    for module in sorted(graph.modules):
        if module not in state and (found := visit(module, [module])):
            return found
    return None


def test_no_module_imports_itself_through_a_cycle_not_even_for_type_checking():
    graph = grimp.build_graph("search", exclude_type_checking_imports=False, cache_dir=None)
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_a_cycle():
    graph = grimp.ImportGraph()
    for module in ("a", "b", "c"):
        graph.add_module(module)
    graph.add_import(importer="a", imported="b")
    graph.add_import(importer="b", imported="c")
    assert find_cycle(graph) is None
    graph.add_import(importer="c", imported="b")
    assert find_cycle(graph) == ["b", "c", "b"]


def long_functions(root: Path) -> dict[str, int]:
    """Every function (or method) under ``root`` longer than ``MAX_FUNCTION_LINES``."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    found[f"{path.relative_to(root)}:{node.name}"] = lines
    return found


def test_every_function_fits_one_screen():
    assert long_functions(ROOT / "search") == {}


def test_a_long_function_is_found(tmp_path):
    body = "\n".join(f"    x = {n}" for n in range(MAX_FUNCTION_LINES))
    (tmp_path / "m.py").write_text(f"def short():\n    pass\n\n\ndef long():\n{body}\n")
    assert long_functions(tmp_path) == {"m.py:long": MAX_FUNCTION_LINES + 1}


@pytest.mark.parametrize("module", ["report", "dashboard", "best"])
def test_commands_that_read_a_study_start_without_torch(module):
    probe = (
        "import runpy, sys\n"
        f"sys.argv = ['search.{module}', '--help']\n"
        "try:\n"
        f"    runpy.run_module('search.{module}', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "loaded = sorted(m for m in ('torch', 'torchvision', 'numba') if m in sys.modules)\n"
        "print('heavy:', ','.join(loaded) or 'none', file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert f"python -m search.{module}" in done.stdout  # the help really was printed
    assert done.stderr.strip().splitlines()[-1] == "heavy: none"


# Private Optuna names: an attribute of a Study, a trial or a storage, or a private module.
PRIVATE_OPTUNA = re.compile(r"\._(storage|study_id|trial_id|backend)\b|_get_stale|storages\._")


def test_every_private_optuna_name_the_service_uses_still_exists(tmp_path):
    from optuna.storages import BaseStorage, RDBStorage

    from search.study.storage import internals

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}")
    trial = study.ask()
    try:
        found = (
            isinstance(internals.storage_of(study), BaseStorage),
            isinstance(internals.rdb(study), RDBStorage),  # unwrapped from the trial cache
            internals.study_id(study) == 1,
            internals.trial_id(trial) == internals.trial_id(study.trials[0]) == 1,
        )
    except AttributeError as e:
        pytest.fail(f"search/study/storage/internals.py: this Optuna lacks {e}")
    assert found == (True, True, True, True), "search/study/storage/internals.py"


def test_only_the_internals_module_touches_private_optuna_apis():
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in sorted((ROOT / "search").rglob("*.py"))
        if path.name != "internals.py"
        for n, line in enumerate(path.read_text().splitlines(), start=1)
        if PRIVATE_OPTUNA.search(line)
    ]
    assert offenders == []
