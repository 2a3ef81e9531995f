"""Checkpoints: a run resumed from the end of an epoch ends exactly as the uninterrupted run."""

from __future__ import annotations

import signal
from dataclasses import asdict
from pathlib import Path

import optuna
import pytest

from search.engine.checkpoint import Checkpoint
from search.engine.train import fit
from search.run import main
from search.study.storage import records
from search.tasks.mlp.vocabulary import to_configs

EPOCHS = 5


def same_run(a, b) -> None:
    """Equal histories and curves, bit for bit, but for the seconds each epoch took."""
    strip = [{k: v for k, v in asdict(r).items() if k != "seconds"} for r in a.history]
    assert strip == [{k: v for k, v in asdict(r).items() if k != "seconds"} for r in b.history]
    assert a.curve == b.curve


@pytest.mark.parametrize(
    "point",
    [
        # the fused, compiled step: ReLU, SGD with Nesterov momentum, dropout, cosine schedule
        {"activation": "relu", "optimizer": "nesterov", "dropout": 0.2, "schedule": "cosine"},
        # the autograd step: GELU, AdamW, input dropout
        {"activation": "gelu", "optimizer": "adamw", "input_dropout": 0.1, "loss": "nll"},
        # the reference's Adadelta at a constant rate
        {"activation": "tanh"},
    ],
    ids=["fused-nesterov", "autograd-adamw", "adadelta"],
)
def test_a_run_resumed_from_a_checkpoint_ends_exactly_as_the_uninterrupted_one(
    point, tiny_splits, tmp_path
):
    model_cfg, train_cfg = to_configs(
        {"layers": 2, "units": 32, "epochs": EPOCHS, "lr_factor": 1.0, **point}, seed=3
    )
    kept: list[Checkpoint] = []
    whole = fit(model_cfg, train_cfg, tiny_splits, keep=kept.append)
    assert [c.epoch for c in kept] == list(range(1, EPOCHS + 1))
    path = tmp_path / "trial.pt"
    kept[2].save(path)  # stopped somewhere in epoch 4: the last checkpoint is epoch 3's
    resumed = fit(model_cfg, train_cfg, tiny_splits, resume=Checkpoint.load(path))
    same_run(resumed, whole)
    assert [r.epoch for r in resumed.history] == list(range(1, EPOCHS + 1))


ONE_POINT = """name = "one"
[params]
layers = 1
units = 48
activation = "relu"
optimizer = "nesterov"
lr_factor = 1.0
schedule = "cosine"
warmup_epochs = 1
dropout = 0.2
batch_size = 64
epochs = 5
"""


def study_argv(root: Path, db: Path, space: Path, sampler: str) -> list[str]:
    tiny = ["--val-size", "200", "--workers", "1", "--quiet", "--n-trials", "1"]
    return [
        *("--sampler", sampler, "--space", str(space), "--study-name", "s"),
        *("--data-dir", str(root), "--storage", f"sqlite:///{db}", *tiny),
    ]


def trials_of(db: Path) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name="s", storage=f"sqlite:///{db}").trials


def runs_of(db: Path) -> records.Runs:
    return records.Runs(optuna.load_study(study_name="s", storage=f"sqlite:///{db}"))


def checkpoint_of(db: Path, trial: optuna.trial.FrozenTrial) -> dict:
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{db}")
    kept = records.rows(study, (records.CHECKPOINT,), trial)
    return next(iter(kept.values()))[records.CHECKPOINT][-1]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sampler", "sig", "at_batch"),
    [
        ("grid", signal.SIGTERM, 0),  # at the start of epoch 4
        ("grid", signal.SIGTERM, 7),  # in the middle of epoch 4
        ("grid", signal.SIGKILL, 7),  # killed: only the checkpoint of epoch 3 is left
        ("random", signal.SIGTERM, 7),  # a sampler's point is queued again
    ],
    ids=["grid-sigterm-epoch-start", "grid-sigterm-mid-epoch", "grid-sigkill", "random-sigterm"],
)
def test_a_trial_stopped_in_epoch_4_of_5_resumes_there_and_ends_as_an_uninterrupted_one(
    sampler, sig, at_batch, tiny_root, tmp_path, pause
):
    space = tmp_path / "one.toml"
    space.write_text(ONE_POINT)
    whole_db, db = tmp_path / "whole.db", tmp_path / "s.db"
    assert main(study_argv(tiny_root, whole_db, space, sampler)) == 0
    (whole,) = trials_of(whole_db)

    in_epoch_4 = pause(after_epochs=3, at_batch=at_batch)
    argv = study_argv(tiny_root, db, space, sampler)
    proc = in_epoch_4.start("search.run", *argv)
    assert in_epoch_4.wait(proc) == proc.pid
    proc.send_signal(sig)
    proc.communicate(timeout=120)
    assert main(argv) == 0  # the rerun, in this process

    stopped, resumed = trials_of(db)
    assert stopped.state.name == "FAIL"
    assert stopped.user_attrs["fail_reason"].startswith("interrupted")
    assert checkpoint_of(db, stopped)["epoch"] == 3
    assert resumed.state.name == "COMPLETE"
    assert resumed.user_attrs["resumed_from"] == {"trial": 0, "epoch": 3}
    assert resumed.value == whole.value
    runs, whole_runs = runs_of(db), runs_of(whole_db)
    strip = lambda history: [  # noqa: E731 - every figure but the seconds an epoch took
        {k: v for k, v in r.items() if k != "seconds"} for r in history
    ]
    assert strip(runs.history(resumed)) == strip(whole_runs.history(whole))
    assert runs.curve(resumed) == whole_runs.curve(whole)
    assert not list((tmp_path / "artifacts").rglob("*.pt"))  # all removed
