"""Bad input to ``--task``: one line on stderr, the right exit code, and nothing created.

Each test runs ``python -m search.run --task ...`` in ``tmp_path`` with its database there: a
refusal in this process (its ``main``, whose exit code and stderr are the command's), a run in a
subprocess, as a user types it. A refused command (exit 2) leaves ``tmp_path`` as it was; a task
that breaks the contract while it runs fails or prunes its trials with a one-line reason, and
the run exits 1 when nothing was learned. The broken tasks are in tests/tasks/, each saying in
its docstring what is wrong with it.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from search.study.running.failures import REPEATS
from search.study.storage import records
from tests import launch

TASKS = Path(__file__).resolve().parent / "tasks"
USAGE, FAILED = 2, 1  # search.errors.EXIT_CODES: a bad option or task; the work failed
STUDY = "s"
BROKEN = str(TASKS / "broken.toml")  # the broken tasks' space: a grid of four points
MODULE = "no_such_module_for_search_tests"


def search_run(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """``python -m search.run ARGV --storage sqlite:///CWD/s.db`` run in ``cwd``."""
    return launch.run(
        [sys.executable, "-m", "search.run", *argv, "--storage", f"sqlite:///{cwd / 's.db'}"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        # Python's own __pycache__ beside an imported task file is not the service's doing.
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


def search_main(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """``search_run``'s command, run by ``search.run.main`` in this process (a refusal needs no
    process of its own); its exit code, stdout and stderr as a finished process's."""
    from search.run import main

    here, cwd_before = sys.dont_write_bytecode, Path.cwd()
    sys.dont_write_bytecode = True
    os.chdir(cwd)
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([*argv, "--storage", f"sqlite:///{cwd / 's.db'}"])
            except SystemExit as e:  # argparse's own refusals
                code = int(e.code or 0)
    finally:
        os.chdir(cwd_before)
        sys.dont_write_bytecode = here
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def tree(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def refused(done: subprocess.CompletedProcess[str]) -> str:
    """The one stderr line of a command refused as usage (exit 2) before it wrote anything."""
    assert done.returncode == USAGE and done.stdout == "", done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1, done.stderr
    return done.stderr


def task(name: str) -> str:
    return str(TASKS / f"{name}.py")


def line_of(name: str, text: str) -> int:
    """The number of the one line of tests/tasks/NAME.py that holds ``text``."""
    lines = (TASKS / f"{name}.py").read_text().splitlines()
    (number,) = [i for i, line in enumerate(lines, 1) if text in line]
    return number


@pytest.mark.parametrize(
    ("argv", "named"),  # named: what the line must name, the option first
    [
        pytest.param(["--task", "missing.py"], ["--task", "missing.py"], id="missing-file"),
        pytest.param(["--task", MODULE], ["--task", MODULE], id="missing-module"),
        pytest.param([f"--task={task('bad_shape')}:nothing"], ["--task", "nothing"], id="no-name"),
        pytest.param(["--task", task("no_train")], ["--task", "train("], id="no-train"),
        pytest.param(
            ["--task", task("train_one_argument")],
            ["--task", "train_one_argument.py", "train("],
            id="train-of-one-argument",
        ),
        pytest.param(
            ["--task", task("train_three_arguments")],
            ["--task", "train_three_arguments.py", "device"],
            id="train-of-three-arguments",
        ),
        pytest.param(
            ["--task", task("load_data_two_arguments")],
            ["--task", "load_data(", "split"],
            id="load-data-of-two-arguments",
        ),
        pytest.param(
            ["--task", task("import_error")],
            ["--task", f"import_error.py:{line_of('import_error', '300 // BATCHES')}"],
            id="raises-on-import",
        ),
        pytest.param(
            ["--task", task("missing_import")],
            ["--task", f"missing_import.py:{line_of('missing_import', 'import no_such')}"],
            id="imports-a-missing-package",
        ),
        pytest.param(
            ["--task", task("no_space")], ["--task", "no_space.py", "--space"], id="no-space"
        ),
        pytest.param(
            ["--task", task("good")], ["--task", "[objective]", "--objectives"], id="no-objective"
        ),
        pytest.param(
            ["--task", task("good"), "--objectives", "val_loss:upward"],
            ["--objectives", "val_loss:upward"],
            id="malformed-objectives",
        ),
        pytest.param(
            ["--task", "cmd:no-such-program --x {x}", "--space", BROKEN],
            ["--task", "no-such-program"],
            id="command-not-found",
        ),
        pytest.param(
            ["--task", "cmd:python -c pass --units {units}", "--space", BROKEN],
            ["--task", "{units}"],
            id="placeholder-not-a-parameter",
        ),
    ],
)
def test_a_bad_task_is_refused_in_one_line_with_exit_code_2_and_nothing_created(
    tmp_path, argv, named
):
    line = refused(search_main(tmp_path, *argv))
    assert all(name in line for name in named), line
    assert tree(tmp_path) == []  # no database, no lock, no artifacts folder


@pytest.mark.slow
def test_a_refused_task_once_fixed_runs_with_the_same_command(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "task.toml").write_text(Path(BROKEN).read_text())
    body = "    return {'val_loss': 1.0 / params['x']}\n"
    (mine / "task.py").write_text("def train(params):\n" + body)
    before = tree(tmp_path)
    argv = ["--task", str(mine / "task.py"), "--study-name", STUDY, "--workers", "1"]
    assert "train(" in refused(search_run(tmp_path, *argv))
    assert tree(tmp_path) == before

    (mine / "task.py").write_text("def train(params, ctx):\n" + body)
    done = search_run(tmp_path, *argv)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    states = [t.state.name for t in trials(tmp_path)]
    assert states == ["COMPLETE"] * 4


def trials(cwd: Path) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=STUDY, storage=f"sqlite:///{cwd / 's.db'}").get_trials()


def run_study(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """A study ``s`` of a task, run in this process (``--workers 1``): trials in grid order."""
    done = search_main(cwd, *argv, "--study-name", STUDY, "--workers", "1")
    assert "Traceback" not in done.stderr, done.stderr
    return done


def stopped_after_repeats(done: subprocess.CompletedProcess[str], cwd: Path) -> list[str]:
    """The failed trials' reasons of a study the repeated-failure stop ended; checks that it
    stopped after ``REPEATS`` failures, exit code 1, its last line naming the first failure."""
    assert done.returncode == FAILED, done.stderr
    ended = [t for t in trials(cwd) if t.state.name != "WAITING"]
    assert [t.state.name for t in ended] == ["FAIL"] * REPEATS
    assert f"trial {ended[0].number}" in done.stderr.splitlines()[-1], done.stderr
    return [records.fail_reason(t) for t in ended]


@pytest.mark.slow
def test_an_objective_metric_the_task_never_gives_fails_its_trials_and_stops_the_study(tmp_path):
    # good.py reports and returns val_loss and val_acc; the space's objective is val_rmse.
    done = run_study(tmp_path, "--task", task("good"), "--space", str(TASKS / "val_rmse.toml"))
    reasons = stopped_after_repeats(done, tmp_path)
    # The reason names the missing metric and those the task does give.
    assert all("val_rmse" in r and "val_loss" in r and "\n" not in r for r in reasons), reasons


def test_a_task_that_raises_fails_with_its_exceptions_first_line_and_stops_the_study(tmp_path):
    done = run_study(tmp_path, "--task", task("bad_shape"))
    # Points x=2 and x=3 raise a message of several lines: only the first is kept.
    assert stopped_after_repeats(done, tmp_path) == ["ValueError: bad shape"] * REPEATS


def test_train_returning_anything_but_a_dict_of_numbers_fails_naming_what_it_returned(tmp_path):
    done = run_study(tmp_path, "--task", task("returns_not_numbers"))
    assert done.returncode == FAILED, done.stderr
    ended = trials(tmp_path)
    assert {t.state.name for t in ended} == {"FAIL"}
    shown = {"none": "None", "text": "'low'", "list": "[0.25, 0.5]"}
    assert {t.params["returns"] for t in ended} == set(shown)
    for t in ended:
        reason = records.fail_reason(t)
        assert shown[t.params["returns"]] in reason and "\n" not in reason, reason


def test_a_non_finite_metric_prunes_its_trial_as_diverged_and_the_others_complete(tmp_path):
    done = run_study(tmp_path, "--task", task("diverges"))
    assert done.returncode == 0, done.stderr
    by_point = {t.params["diverges"]: t for t in trials(tmp_path)}
    assert {p: t.state.name for p, t in by_point.items()} == {
        "report": "PRUNED",
        "return": "PRUNED",
        "never": "COMPLETE",
    }
    for point in ("report", "return"):
        reason = by_point[point].user_attrs[records.REASON]
        assert reason.startswith("diverged") and "val_loss" in reason, reason
    assert by_point["never"].value == 0.5


@pytest.mark.slow
def test_the_repeated_failure_stop_also_ends_a_run_of_several_workers(tmp_path):
    argv = ["--task", task("bad_shape"), "--study-name", STUDY, "--workers", "2"]
    done = search_run(tmp_path, *argv)
    assert done.returncode == FAILED and "Traceback" not in done.stderr, done.stderr
    failed = [t for t in trials(tmp_path) if t.state.name == "FAIL"]
    # The stop ends it: at most the trial the other worker had in hand runs besides.
    assert REPEATS <= len(failed) <= REPEATS + 1
    # The stop names the streak's first trial by the time it ended: with two workers, that need
    # not be the lowest number.
    first = min(failed, key=lambda t: t.datetime_complete)
    assert f"first trial {first.number}:" in done.stderr.splitlines()[-1], done.stderr
