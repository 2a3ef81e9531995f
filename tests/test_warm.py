"""Warm starts: the baseline or another study's best points run first, where they fit."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from search.run import main
from search.study.space.spacefile import design, parse_space
from search.study.space.warm import KNOWN_GOOD, fit_point

from .helpers import args

SAMPLER = ["--sampler", "random", "--max-epochs", "1", "--pruner", "none"]


def trials(db: Path, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{db}").get_trials()


def test_the_baseline_runs_first_with_the_known_good_values(tiny_root, tmp_path):
    db = tmp_path / "s.db"
    argv = args(tiny_root, db, *SAMPLER, "--n-trials", "2", "--enqueue-baseline")
    assert main(argv) == 0
    first, second = trials(db, "mnist-default-random-e1-v200")
    assert first.user_attrs["warm_start"] == "baseline" and "warm_start" not in second.user_attrs
    searched = ("layers", "units", "optimizer", "lr_factor", "dropout", "weight_decay")
    assert {k: first.params[k] for k in searched} == {
        "layers": 2,
        "units": 1024,
        "optimizer": "adamw",
        "lr_factor": 1.0,
        "dropout": 0.3,
        "weight_decay": 0.05,
    }
    assert first.user_attrs["epochs"] == 1  # capped as every trial is
    assert main(argv) == 0  # a rerun queues nothing again
    assert [
        t.user_attrs.get("warm_start") for t in trials(db, "mnist-default-random-e1-v200")
    ] == [
        "baseline",
        None,
    ]


@pytest.mark.slow
def test_a_warm_start_runs_the_best_points_of_another_study_first(tiny_root, tmp_path, capsys):
    db = tmp_path / "s.db"
    assert main(args(tiny_root, db, *SAMPLER, "--n-trials", "6", "--study-name", "old")) == 0
    old = optuna.load_study(study_name="old", storage=f"sqlite:///{db}")
    best = sorted(old.trials, key=lambda t: -t.value)[:5]
    argv = args(tiny_root, db, *SAMPLER, "--n-trials", "5", "--study-name", "new")
    assert main([*argv, "--warm-start", "old"]) == 0
    new = trials(db, "new")
    assert [t.params for t in new] == [t.params for t in best]
    assert new[0].user_attrs["warm_start"] == f"old trial {best[0].number}"


def test_a_warm_start_from_another_space_uses_the_points_that_fit(tiny_root, tmp_path):
    db = tmp_path / "s.db"
    wide = tmp_path / "wide.toml"
    wide.write_text('name = "wide"\n[params]\nlayers = 1\nunits = [8, 16, 32, 64]\n')
    narrow = tmp_path / "narrow.toml"
    narrow.write_text('name = "narrow"\n[params]\nlayers = 1\nunits = [16, 32]\nlr = [0.5, 1.0]\n')
    assert (
        main(args(tiny_root, db, "--sampler", "grid", "--space", str(wide), "--max-epochs", "1"))
        == 0
    )
    argv = args(tiny_root, db, *SAMPLER, "--space", str(narrow), "--n-trials", "2")
    assert main([*argv, "--warm-start", "mnist-wide-e1-v200"]) == 0
    new = trials(db, "mnist-narrow-random-e1-v200")
    warm = [t for t in new if "warm_start" in t.user_attrs]
    assert {t.params["units"] for t in warm} == {16, 32}  # 8 and 64 do not fit
    assert all(t.params["lr"] in (0.5, 1.0) for t in warm)  # left to the sampler


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--warm-start", "nope"], "--warm-start: no study 'nope'"),
        (["--warm-start", "empty"], "--warm-start: study 'empty' has no completed trial"),
        (["--sampler", "grid", "--enqueue-baseline"], "--enqueue-baseline: a grid runs its own"),
    ],
)
def test_a_warm_start_that_cannot_be_made_is_one_line_and_exit_2(extra, message, tmp_path, capsys):
    db = tmp_path / "s.db"
    optuna.create_study(study_name="empty", storage=f"sqlite:///{db}")
    sampler = [] if "grid" in extra else ["--sampler", "random"]
    assert main(["--storage", f"sqlite:///{db}", "--quiet", *sampler, *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_the_baseline_outside_a_space_is_refused_naming_the_parameter(tmp_path, capsys):
    space = tmp_path / "big.toml"
    space.write_text("[params]\nunits = [512, 2048]\n")
    argv = [
        "--storage",
        f"sqlite:///{tmp_path}/s.db",
        "--sampler",
        "random",
        "--space",
        str(space),
    ]
    assert main([*argv, "--enqueue-baseline"]) == 2
    assert "the baseline's units=1024 is outside" in capsys.readouterr().err


def test_a_point_fits_a_space_only_with_every_value_inside_it():
    space = parse_space(
        "[params]\nlayers = { low = 1, high = 3 }\nlr_factor = { low = 0.1, high = 2.0 }\n"
        'activation = ["relu", "tanh"]\nloss = "cross_entropy"\n',
        "test",
    )
    assert fit_point(space, KNOWN_GOOD) == {
        "layers": 2,
        "lr_factor": 1.0,
        "activation": "relu",
        "loss": "cross_entropy",
    }
    assert fit_point(space, {**KNOWN_GOOD, "layers": 4}) is None
    assert fit_point(space, {**KNOWN_GOOD, "layers": 1.5}) is None
    assert fit_point(space, {**KNOWN_GOOD, "activation": "gelu"}) is None
    assert fit_point(space, {**KNOWN_GOOD, "loss": "mse"}) is None


def test_the_known_good_configuration_fits_the_default_space():
    assert fit_point(design("default"), KNOWN_GOOD) is not None
