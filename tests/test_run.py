"""The CLI end to end on tiny synthetic data: run, resume, interrupt, kill, bad input."""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from search.run import main
from search.study.storage import records
from search.study.storage.settings import command_line

from . import launch
from .helpers import args, completed_points, executions, load_trials


@pytest.mark.slow
def test_grid_runs_all_fifteen_points_then_resumes_with_nothing_to_do(tiny_root, tmp_path, capsys):
    db = tmp_path / "s.db"
    assert main(args(tiny_root, db, "--max-epochs", "1")) == 0
    table = capsys.readouterr().out
    assert "differs from baseline" in table and "activation=tanh" in table
    first = load_trials(db, "mnist-ofat-e1-v200")
    assert [t.state.name for t in first] == ["COMPLETE"] * 15
    assert len(set(completed_points(first))) == 15

    assert main(args(tiny_root, db, "--max-epochs", "1")) == 0
    again = load_trials(db, "mnist-ofat-e1-v200")
    assert [(t.number, t.value, t.datetime_complete) for t in again] == [
        (t.number, t.value, t.datetime_complete) for t in first
    ]


def test_trials_store_what_a_chart_needs(tiny_root, tmp_path):
    db = tmp_path / "s.db"
    assert main(args(tiny_root, db, "--max-epochs", "2", "--n-trials", "1")) == 0
    trials = load_trials(db, "mnist-ofat-e2-v200")
    (trial,) = [t for t in trials if t.state.name == "COMPLETE"]
    assert {t.state.name for t in trials[1:]} == {"WAITING"}  # the rest stays queued
    study = optuna.load_study(study_name="mnist-ofat-e2-v200", storage=f"sqlite:///{db}")
    runs = records.Runs(study)
    history = runs.history(trial)
    assert [r["epoch"] for r in history] == [1, 2]
    assert {"train_loss", "val_acc", "test_acc", "samples_seen", "seconds"} <= set(history[0])
    assert runs.curve(trial) and trial.user_attrs["n_params"] == 784 * 128 + 128 + 128 * 10 + 10
    assert trial.user_attrs["metrics"]["test_acc"] is not None
    assert trial.value == max(r["val_acc"] for r in history)
    assert trial.intermediate_values == {1: history[0]["val_acc"], 2: history[1]["val_acc"]}


def test_the_study_records_the_command_that_made_it(tiny_root, tmp_path):
    db = tmp_path / "my data" / "s.db"  # a space in a path must survive the round trip
    argv = args(tiny_root, db, "--max-epochs", "1", "--n-trials", "1", "--seed", "5")
    assert main(argv) == 0
    study = optuna.load_study(study_name="mnist-ofat-e1-v200", storage=f"sqlite:///{db}")
    assert study.user_attrs["settings"]["seed"] == 5
    assert study.user_attrs["command"] == "python -m search.run " + shlex.join(argv)
    assert shlex.split(study.user_attrs["command"])[3:] == argv
    assert {"torch", "optuna", "python"} <= set(study.user_attrs["versions"])
    assert study.metric_names == ["val_acc"]  # what the dashboard shows for the objective


def test_a_recorded_command_hides_the_database_password():
    line = command_line("search.worker", ["--storage", "postgresql://u:secret@db/x", "-q"])
    assert line == "python -m search.worker --storage 'postgresql://u:***@db/x' -q"
    line = command_line("search.run", ["--storage=mysql://u:secret@db/x"])
    assert line == "python -m search.run '--storage=mysql://u:***@db/x'"


def test_resuming_with_other_settings_is_refused(tiny_root, tmp_path, capsys):
    db = tmp_path / "s.db"
    assert (
        main(args(tiny_root, db, "--max-epochs", "1", "--n-trials", "1", "--study-name", "x")) == 0
    )
    code = main(args(tiny_root, db, "--max-epochs", "2", "--study-name", "x"))
    assert code == 2
    assert "max_epochs=1 (now 2)" in capsys.readouterr().err


@pytest.mark.parametrize(
    "bad",
    [
        ["--sampler", "magic"],
        ["--design", "half"],
        ["--dataset", "cifar"],
        ["--device", "tpu"],
        ["--max-epochs", "0"],
    ],
)
def test_unknown_choices_are_one_line_usage_errors(bad, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(bad)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err


def test_a_storage_that_is_not_a_database_exits_1_and_is_untouched(tiny_root, tmp_path, capsys):
    db = tmp_path / "precious.db"
    db.write_bytes(b"\x00\x01 not sqlite")
    assert main(args(tiny_root, db)) == 1
    assert db.read_bytes() == b"\x00\x01 not sqlite"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "left untouched" in err


def test_missing_data_exits_1_with_one_line(tmp_path, capsys):
    code = main(["--data-dir", str(tmp_path / "none"), "--storage", f"sqlite:///{tmp_path}/s.db"])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "MNIST/raw" in err[0] and "train-images-idx3-ubyte" in err[0]


def _start(root: Path, db: Path, *extra: str, env: dict | None = None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "search.run", *args(root, db, "--max-epochs", "2", *extra)]
    return launch.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_an_interrupted_run_resumes_with_every_point_completed_once(
    tiny_root, tmp_path, sig, pause
):
    db = tmp_path / "s.db"
    mid_trial = pause(after_epochs=6)  # three 2-epoch trials done, the fourth in its 1st epoch
    proc = _start(tiny_root, db, env=mid_trial.env)
    assert mid_trial.wait(proc) == proc.pid
    proc.send_signal(sig)
    proc.communicate(timeout=120)
    assert proc.returncode == (130 if sig == signal.SIGINT else -signal.SIGKILL)
    before = {
        t.number: t for t in load_trials(db, "mnist-ofat-e2-v200") if t.state.name == "COMPLETE"
    }
    assert sorted(before) == [0, 1, 2]

    assert main(args(tiny_root, db, "--max-epochs", "2")) == 0  # the rerun, in this process
    after = load_trials(db, "mnist-ofat-e2-v200")
    unfinished = [(t.number, t.state.name) for t in after if t.state.name != "COMPLETE"]
    assert len(completed_points(after)) == len(set(completed_points(after))) == 15, unfinished
    for number, t in before.items():  # nothing completed was rerun or changed
        assert (
            after[number].value == t.value
            and after[number].datetime_complete == t.datetime_complete
        )
    (failed,) = [t for t in after if t.state.name == "FAIL"]
    reason = failed.user_attrs["fail_reason"]
    assert failed.number == 3
    if sig == signal.SIGINT:  # the process failed its own trial on the way out
        assert reason == "interrupted"
    else:  # the next run found the dead process's trial
        assert reason == f"interrupted: process {proc.pid} ended while the trial ran"
    study = optuna.load_study(study_name="mnist-ofat-e2-v200", storage=f"sqlite:///{db}")
    assert executions(study) == 16  # 15 points, and one interrupted run
    assert not [t for t in after if t.state.name in ("RUNNING", "WAITING")]


@pytest.mark.parametrize("module", ["run", "best", "report", "dashboard", "worker"])
def test_every_entry_point_reports_a_usage_error_in_one_line(module, capsys):
    import importlib

    entry = importlib.import_module(f"search.{module}")
    with pytest.raises(SystemExit) as exit_:
        entry.main(["--no-such-option"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"python -m search.{module}: error:" in err
