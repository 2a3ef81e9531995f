"""The study's epochs (--epochs), the pruner's horizon, and the epoch a trial is judged by."""

from __future__ import annotations

import math

import optuna
import pytest

from search.engine.history import EpochRecord, judged_epoch
from search.run import main
from search.study.space.samplers import first_rung, make_pruner
from search.study.space.spacefile import design
from search.study.storage import records
from search.study.storage.settings import stored_settings, stored_space

from .helpers import args

RANDOM = ["--sampler", "random", "--pruner", "none"]


def study_of(db, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{db}")


def record(epoch: int, val_acc: float) -> EpochRecord:
    return EpochRecord(epoch, 0.1, 0.1, val_acc, 0.1, val_acc - 0.01, 1.0, 100 * epoch)


def test_the_last_epoch_rule_takes_the_last_and_the_best_rule_the_earliest_best():
    history = [record(1, 0.90), record(2, 0.95), record(3, 0.95), record(4, 0.93)]
    assert judged_epoch(history, "last").epoch == 4
    assert judged_epoch(history, "best").epoch == 2
    assert judged_epoch([], "last") is None


def test_epochs_fix_every_trials_length_and_the_pruners_horizon(tiny_root, tmp_path):
    db = tmp_path / "s.db"
    assert main(args(tiny_root, db, *RANDOM, "--n-trials", "2", "--epochs", "3")) == 0
    study = study_of(db, "mnist-default-random-ep3-v200")
    assert stored_settings(study).epochs == 3
    assert [len(records.history(study, t)) for t in study.trials] == [3, 3]
    assert [records.config(study, t)["train"]["epochs"] for t in study.trials] == [3, 3]
    assert stored_space(study).horizon(None) == 3


@pytest.mark.parametrize("horizon", [1, 3, 15, 25])
def test_hyperband_plans_from_the_first_rung_to_the_horizon(horizon):
    pruner = make_pruner("hyperband", horizon)
    assert (pruner._min_resource, pruner._max_resource) == (first_rung(horizon), horizon)
    assert first_rung(horizon) == max(1, horizon // 5)


def test_the_default_space_runs_fifteen_epochs_and_first_prunes_after_three():
    space = design("default")
    assert space.horizon(None) == 15 and first_rung(space.horizon(None)) == 3
    assert space.horizon(4) == 4  # a quick look's cap is the horizon


@pytest.mark.slow
def test_a_search_is_judged_by_its_last_epoch(tiny_root, tmp_path):
    db = tmp_path / "s.db"
    assert main(args(tiny_root, db, *RANDOM, "--n-trials", "3", "--epochs", "4")) == 0
    study = study_of(db, "mnist-default-random-ep4-v200")
    for t in study.trials:
        last = records.history(study, t)[-1]
        assert t.user_attrs["judge"] == "last" and t.user_attrs["judged_epoch"] == 4
        assert (
            t.value == last["val_acc"] and t.user_attrs["metrics"]["test_acc"] == last["test_acc"]
        )


@pytest.mark.slow
def test_a_grid_keeps_the_reference_rule_the_best_epoch(tiny_root, tmp_path):
    db = tmp_path / "s.db"
    assert main(args(tiny_root, db, "--max-epochs", "3", "--n-trials", "4")) == 0
    study = study_of(db, "mnist-ofat-e3-v200")
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(done) == 4
    for t in done:
        best = max(r["val_acc"] for r in records.history(study, t))
        assert t.user_attrs["judge"] == "best" and t.value == best


def test_the_judged_epoch_can_be_chosen_and_is_part_of_the_study(tiny_root, tmp_path, capsys):
    db = tmp_path / "s.db"
    base = args(tiny_root, db, *RANDOM, "--n-trials", "1", "--max-epochs", "3")
    assert main([*base, "--judge-epoch", "best"]) == 0
    study = study_of(db, "mnist-default-random-e3-v200")
    (t,) = study.trials
    assert t.value == max(r["val_acc"] for r in records.history(study, t))
    capsys.readouterr()
    assert main(base) == 2  # resumed with the default rule, last: refused
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "judge_epoch='best' (now 'last')" in err


def test_a_study_made_before_these_settings_resumes_as_it_was_run(tiny_root, tmp_path):
    db = tmp_path / "s.db"
    base = args(tiny_root, db, *RANDOM, "--max-epochs", "2", "--judge-epoch", "best")
    assert main([*base, "--n-trials", "1"]) == 0
    study = study_of(db, "mnist-default-random-e2-v200")
    old = {
        k: v for k, v in study.user_attrs["settings"].items() if k not in ("epochs", "judge_epoch")
    }
    study.set_user_attr("settings", old)  # as an older version stored it
    assert main([*base, "--n-trials", "2"]) == 0
    assert [t.state.name for t in study_of(db, "mnist-default-random-e2-v200").trials] == [
        "COMPLETE"
    ] * 2


def test_epochs_are_refused_for_a_grid_with_one_line(tmp_path, capsys):
    assert main(["--storage", f"sqlite:///{tmp_path}/s.db", "--epochs", "3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--epochs: a grid runs its points' epochs" in err


def test_a_capped_trial_still_reaches_the_end_of_its_schedule(tiny_root, tmp_path):
    db = tmp_path / "s.db"
    assert main(args(tiny_root, db, *RANDOM, "--n-trials", "1", "--max-epochs", "2")) == 0
    study = study_of(db, "mnist-default-random-e2-v200")
    (t,) = study.trials
    schedule = records.config(study, t)["train"]["schedule"]
    # The default space's 1 warm-up epoch of 15, shrunk with the run to 2 epochs.
    assert schedule["kind"] == "cosine" and math.isclose(schedule["warmup_epochs"], 2 / 15)
