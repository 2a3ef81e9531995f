"""The README's commands are what CI and the tests run."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import optuna

from tests.test_slurm import GRID_OPTIONS, GRID_STUDY, GRID_TASKS, submit_argv

ROOT = Path(__file__).resolve().parent.parent


def quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, re.S)]


def test_quick_start_has_two_commands_the_main_job_and_the_tests():
    run, test = quick_start_commands()
    assert "python -m search.run --sampler grid" in run
    assert "pytest" in test


def test_ci_runs_exactly_the_readmes_test_command():
    _, test = quick_start_commands()
    assert test in (ROOT / ".ci" / "run").read_text().splitlines()


def test_the_layout_section_names_every_module_in_its_layer():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Layout", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1] for line in section.splitlines() if line.startswith("| ")}
    for folder in ("engine", "study", "views"):
        (row,) = [r for r in rows if f"`search/{folder}/`" in r]
        for module in sorted((ROOT / "search" / folder).glob("*.py")):
            if module.name != "__init__.py":
                assert f"`{module.name}`" in row, f"search/{folder}/{module.name} is not listed"
    (top,) = [r for r in rows if "entry points" in r]
    for module in sorted((ROOT / "search").glob("*.py")):
        if module.name not in ("__init__.py", "errors.py", "task.py"):  # task.py: its own row
            assert module.name in top, f"search/{module.name} is not listed"
    assert [r for r in rows if "`search/task.py`" in r]


def cluster_path_commands() -> list[list[str]]:
    """The commands of the numbered steps of "From one machine to a cluster"."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## From one machine to a cluster", 1)[1].split("\n| engine", 1)[0]
    return [shlex.split(c) for c in re.findall(r"`((?:python|kubectl) [^`]+)`", section)]


def test_the_cluster_paths_first_steps_run_as_written(real_root, tmp_path):
    runs = [c for c in cluster_path_commands() if c[2] in ("search.run", "search.worker")]
    assert len(runs) == 3
    env = {k: v for k, v in os.environ.items() if k != "SEARCH_STORAGE"}
    for command in runs:  # in a fresh folder: the default storage, study_db/mnist.db
        done = subprocess.run(
            [sys.executable, *command[1:]],
            cwd=tmp_path,
            env={**env, "SEARCH_DATA_DIR": str(real_root)},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr
    storage = f"sqlite:///{tmp_path}/study_db/mnist.db"
    for name in ("mnist-ofat-e1-n2000", GRID_STUDY):  # step 1's study, and steps 2's
        trials = optuna.load_study(study_name=name, storage=storage).trials
        assert [t.state.name for t in trials] == ["COMPLETE"] * 15


def test_the_cluster_paths_last_step_is_what_the_cluster_tests_run():
    commands = cluster_path_commands()
    (create,) = [c for c in commands if "--create-only" in c]
    assert create[3:] == [*GRID_OPTIONS, "--study-name", GRID_STUDY, "--create-only"]
    (submit,) = [c for c in commands if c[2:3] == ["search.submit"]]
    assert submit[3:] == submit_argv(GRID_STUDY, GRID_TASKS)  # tests/test_slurm.py's array
    (kubectl,) = [c for c in commands if c[0] == "kubectl"]
    assert kubectl == ["kubectl", "apply", "-k", "deploy/kubernetes/"]
    assert (ROOT / kubectl[-1] / "kustomization.yaml").exists()  # tests/test_kubernetes.py
