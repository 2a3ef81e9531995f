"""Integration tests on the real MNIST found through SEARCH_DATA_DIR (skipped without it)."""

from __future__ import annotations

import signal
import subprocess
import sys

import optuna
import pytest

from search.engine.config import ModelConfig, TrainConfig
from search.engine.data import DataConfig, load
from search.engine.train import fit
from search.run import main as run_main

from .helpers import completed_points, executions, load_trials

pytestmark = pytest.mark.slow


def test_one_epoch_of_the_baseline_reaches_95_percent_on_the_test_set(real_root):
    splits = load(DataConfig(data_dir=str(real_root)))
    assert len(splits.train_x) == 55_000 and len(splits.test_x) == 10_000
    result = fit(ModelConfig(), TrainConfig(epochs=1), splits)
    assert result.history[0].test_acc >= 0.95


def test_ofat_study_runs_then_resumes_after_an_interruption(real_root, tmp_path, pause, capsys):
    db = tmp_path / "s.db"
    cmd = [
        sys.executable,
        "-m",
        "search.run",
        "--sampler",
        "grid",
        "--max-epochs",
        "1",
        "--train-limit",
        "2000",
        "--workers",
        "1",
        "--storage",
        f"sqlite:///{db}",
        "--data-dir",
        str(real_root),
    ]
    mid_trial = pause(after_epochs=3)  # three 1-epoch trials done, the fourth training
    first = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=mid_trial.env
    )
    assert mid_trial.wait(first) == first.pid
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=120)
    assert first.returncode == 130
    before = {
        t.number: t.value
        for t in load_trials(db, "mnist-ofat-e1-n2000")
        if t.state.name == "COMPLETE"
    }
    assert sorted(before) == [0, 1, 2]

    assert run_main(cmd[3:]) == 0  # the same command again, in this process
    assert "differs from baseline" in capsys.readouterr().out
    after = load_trials(db, "mnist-ofat-e1-n2000")
    assert len(completed_points(after)) == len(set(completed_points(after))) == 15
    study = optuna.load_study(study_name="mnist-ofat-e1-n2000", storage=f"sqlite:///{db}")
    assert executions(study) == 16  # and the interrupted run, failed and then run again
    assert all(after[n].value == v for n, v in before.items())
    baseline = next(
        t
        for t in after
        if t.state.name == "COMPLETE"
        and t.params["layers"] == 1
        and t.params
        == {
            **t.params,
            "activation": "relu",
            "lr": 1.0,
            "loss": "nll",
            "regularization": "none",
            "batch_size": 64,
            "epochs": 14,
        }
    )
    assert baseline.value > 0.6  # 2,000 samples, one epoch: far above chance (0.1)
