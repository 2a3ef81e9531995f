"""The final step: the best configurations by validation, retrained with seeds, tested once."""

from __future__ import annotations

import statistics
from pathlib import Path

import optuna
import pytest
import torch

from search import final
from search.engine import train as train_module
from search.engine.config import ModelConfig, TrainConfig
from search.engine.data import DataConfig, load
from search.engine.model import build_mlp
from search.engine.train import evaluate, fit
from search.run import main as run_main
from search.study.running.final import choose
from search.tasks.mlp.vocabulary import to_configs
from search.views.publish import study_note
from search.views.report import write_report

from .helpers import args

STUDY = "mnist-default-random-e2-v200"


@pytest.fixture(scope="module")
def searched(tiny_root, tmp_path_factory) -> Path:
    """A finished random search of 4 trials on the tiny data."""
    db = tmp_path_factory.mktemp("final") / "s.db"
    argv = ["--sampler", "random", "--pruner", "none", "--n-trials", "4", "--max-epochs", "2"]
    assert run_main(args(tiny_root, db, *argv)) == 0
    return db


def finalize(tiny_root, db: Path, *extra: str) -> int:
    storage = f"sqlite:///{db}"
    argv = ["--storage", storage, "--study-name", STUDY, "--data-dir", str(tiny_root)]
    return final.main([*argv, "--workers", "1", *extra])


def study_of(db: Path) -> optuna.Study:
    return optuna.load_study(study_name=STUDY, storage=f"sqlite:///{db}")


@pytest.mark.slow
def test_the_final_step_records_mean_and_spread_of_the_best_configurations(
    searched, tiny_root, capsys
):
    assert finalize(tiny_root, searched, "--top", "2", "--seeds", "2") == 0
    study = study_of(searched)
    by_val = sorted(study.trials, key=lambda t: (-t.value, t.number))
    record = study.user_attrs["final"]
    assert [c["trial"] for c in record["configs"]] == [t.number for t in by_val[:2]]
    assert record["metric"] == "test_acc" and record["chosen_by"] == "val_acc"
    for c in record["configs"]:
        accs = c["metrics"]["test_acc"]
        assert c["seeds"] == [1, 2] and len(accs) == 2
        assert c["mean"]["test_acc"] == pytest.approx(statistics.fmean(accs))
        assert c["std"]["test_acc"] == pytest.approx(statistics.stdev(accs))
    out = capsys.readouterr().out
    assert f"1. trial {by_val[0].number}: val" in out and "test read once per model" in out


def test_the_winners_weights_load_without_pickled_code_and_score_what_was_recorded(
    searched, tiny_root
):
    assert finalize(tiny_root, searched, "--top", "1", "--seeds", "1") == 0
    record = study_of(searched).user_attrs["final"]
    weights = record["weights"]
    state = torch.load(weights["path"], weights_only=True)
    settings = study_of(searched).user_attrs["settings"]
    model_cfg, _ = to_configs(weights["params"], weights["seed"], settings["max_epochs"])
    model = build_mlp(model_cfg)
    model.load_state_dict(state)
    splits = load(DataConfig(data_dir=str(tiny_root), val_size=0))
    _, acc = evaluate(model, splits.test_x, splits.test_y, "nll")
    assert weights["trial"] == record["configs"][0]["trial"] and weights["seed"] == 1
    assert acc == record["configs"][0]["metrics"]["test_acc"][0]


def test_configurations_are_chosen_by_validation_never_by_test():
    study = optuna.create_study(direction="maximize")
    dist = {"units": optuna.distributions.IntDistribution(1, 100)}
    for units, val, test in [(10, 0.90, 0.50), (20, 0.80, 0.99), (10, 0.85, 0.99)]:
        study.add_trial(
            optuna.trial.create_trial(
                params={"units": units},
                distributions=dist,
                value=val,
                user_attrs={"test_acc_judged": test},
            )
        )
    # By validation; the repeated configuration (units 10) counts once, at its best.
    assert [t.params["units"] for t in choose(study, 3)] == [10, 20]


def test_a_final_run_reads_the_test_set_once_after_its_last_epoch(tiny_root, monkeypatch):
    splits = load(DataConfig(data_dir=str(tiny_root), val_size=0))
    seen = []

    def counting(model, x, y, loss, batch=1000):
        seen.append(len(x))
        return evaluate(model, x, y, loss, batch)

    monkeypatch.setattr(train_module, "evaluate", counting)
    cfg = TrainConfig(epochs=3, batch_size=64, every_epoch=False)
    result = fit(ModelConfig(hidden=(16,)), cfg, splits)
    assert seen == [len(splits.test_x)] and len(splits.train_x) == 1200
    assert [r.test_acc == r.test_acc for r in result.history] == [False, False, True]  # nan


def test_the_report_and_the_dashboard_note_show_the_final_models(searched, tiny_root, tmp_path):
    assert finalize(tiny_root, searched, "--top", "1", "--seeds", "2") == 0
    study = study_of(searched)
    trial = study.user_attrs["final"]["configs"][0]["trial"]
    written = write_report(study, tmp_path / "report")
    index = (tmp_path / "report" / "index.html").read_text()
    assert "Final models" in index and f"1. trial {trial}: val" in index
    assert tmp_path / "report" / "final.csv" in written
    assert f"1. trial {trial}: val" in study_note(study)


@pytest.mark.parametrize(
    ("made", "code", "message"),
    [
        (False, 1, "--study-name: no study 'new'"),
        (True, 1, "no completed trial to finalize yet"),
    ],
)
def test_final_without_a_completed_trial_is_one_line(
    made, code, message, tiny_root, tmp_path, capsys
):
    db = tmp_path / "s.db"
    optuna.create_study(study_name="other", storage=f"sqlite:///{db}")
    if made:  # queued, never run
        create = ["--sampler", "random", "--study-name", "new", "--create-only"]
        assert run_main(args(tiny_root, db, *create)) == 0
    capsys.readouterr()
    assert final.main(["--storage", f"sqlite:///{db}", "--study-name", "new"]) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
