"""``python -m search.check``: a task that resumes exactly passes; each way of getting it wrong
is caught (tiny tasks on synthetic data in tests/tasks/, each check well under a second)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from search.check import main
from search.errors import SearchError
from search.study.space.spacefile import load_space, parse_space
from search.task import DataContext
from search.tasks.checking import check_task, epoch_budget, pick_point
from search.tasks.loading import load_task
from tests import launch

TASKS = Path(__file__).resolve().parent / "tasks"


def check(name: str, capsys: pytest.CaptureFixture, *more: str) -> tuple[int, list[str], str]:
    """Exit code, stdout's lines and stderr of ``search.check`` on ``tests/tasks/NAME.py``."""
    code = main(["--task", str(TASKS / f"{name}.py"), "--device", "cpu", *more])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def outcome_of(name: str, tmp_path: Path, epochs: int = 2):
    task = load_task(str(TASKS / f"{name}.py"))
    params = pick_point(load_space(task.space_file, open_=True), epochs)
    ctx = DataContext(seed=1, device=torch.device("cpu"), data_dir=tmp_path, train_limit=200)
    return check_task(task, params, epoch_budget(params, epochs), ctx, tmp_path)


def test_a_task_that_resumes_exactly_passes(capsys):
    code, lines, _ = check("good", capsys)
    assert (code, lines[-1]) == (0, "resume is exact")


def test_a_checkpoint_without_the_optimizer_state_names_the_first_differing_metric_and_epoch(
    capsys,
):
    code, lines, _ = check("no_optimizer_state", capsys)
    assert code == 1
    assert [s for s in lines if s.startswith("resume differs: train_loss in epoch 2: ")]


def test_a_longer_check_still_finds_the_first_difference(tmp_path):
    difference = outcome_of("no_optimizer_state", tmp_path, epochs=3).difference
    assert (difference.metric, difference.epoch) == ("train_loss", 2)


def test_an_unseeded_random_generator_makes_the_runs_differ(capsys):
    code, lines, _ = check("unseeded_rng", capsys)
    assert code == 1
    assert [s for s in lines if s.startswith("resume differs: ")]


@pytest.mark.parametrize(
    ("name", "finding"),
    [("no_report", "no_report"), ("no_checkpoint", "no_checkpoint"), ("no_restore", "no_restore")],
)
def test_a_task_that_cannot_resume_is_told_why(name, finding, tmp_path, capsys):
    assert outcome_of(name, tmp_path).findings == [finding]
    code, lines, _ = check(name, capsys)
    assert code == 1 and not [s for s in lines if s.startswith("resume ")]


def test_a_task_that_raises_is_one_line_and_exit_code_1(capsys):
    code, lines, err = check("raises", capsys)
    assert code == 1
    assert err.count("\n") == 1 and "Traceback" not in err


def test_the_task_s_own_error_is_kept_for_debug(tmp_path):
    with pytest.raises(SearchError) as raised:
        outcome_of("raises", tmp_path)
    assert isinstance(raised.value.__cause__, ValueError)


def test_a_missing_task_file_is_one_line_and_exit_code_2(tmp_path):
    done = launch.run(
        [sys.executable, "-m", "search.check", "--task", str(tmp_path / "nope.py")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_a_task_without_a_space_is_one_line_and_exit_code_2(tmp_path, capsys):
    task = tmp_path / "bare.py"
    task.write_text("def train(params, ctx):\n    return {}\n")
    assert main(["--task", str(task)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_one_epoch_is_too_few_to_check_a_resume(capsys):
    with pytest.raises(SystemExit) as exit_:
        check("good", capsys, "--epochs", "1")
    assert exit_.value.code == 2


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ("x = 3", 3),
        ("x = ['relu', 'tanh']", "relu"),
        ("x = {low = 0.0, high = 1.0}", 0.5),
        ("x = {low = 0.0001, high = 0.01, log = true}", 0.001),
        ("x = {low = 1, high = 4}", 2),
        ("x = {low = 1, high = 4}\n[baseline]\nx = 4", 4),
    ],
)
def test_the_checked_point_is_the_baseline_else_a_fixed_value_first_choice_or_middle(
    params, expected
):
    space = parse_space(f"[params]\n{params}\n", "test", open_=True)
    assert pick_point(space, 2) == {"x": expected}


@pytest.mark.parametrize(("own", "expected"), [(5, 3), (1, 2)])
def test_a_point_s_own_epochs_is_capped_to_the_check_s_but_at_least_two(own, expected):
    space = parse_space(f"[params]\nepochs = {own}\n", "test", open_=True)
    assert epoch_budget(pick_point(space, 3), 3) == expected
