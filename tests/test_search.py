"""Samplers, pruners, space files, budgets, multi-objective and search.best, on tiny data."""

from __future__ import annotations

import sys
from pathlib import Path

import optuna
import pytest

from search import best
from search.errors import UsageError
from search.run import main
from search.study.space.samplers import PRUNERS, SAMPLERS, make_pruner
from search.study.space.spacefile import SPACES_DIR, load_space
from search.study.storage import records
from search.views.best import best_trial

from .helpers import args


def run_ok(root: Path, db: Path, *extra: str) -> None:
    """Run the CLI on the tiny data and expect success."""
    assert main(args(root, db, *extra)) == 0


def study_of(db: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{db}")


def complete(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))


# The class each registry name must run, written out here (not read from the registry).
SAMPLER_CLASSES = {
    "random": "RandomSampler",
    "tpe": "TPESampler",
    "gp": "GPSampler",
    "qmc": "QMCSampler",
    "cmaes": "CmaEsSampler",
    "nsga2": "NSGAIISampler",
}


def test_every_registered_sampler_is_tested():
    assert set(SAMPLERS) == {"grid", *SAMPLER_CLASSES}


@pytest.mark.parametrize("sampler", sorted(SAMPLER_CLASSES))
def test_every_sampler_runs_a_few_trials_of_the_default_space(sampler, tiny_root, tmp_path):
    db = tmp_path / "s.db"
    code = main(
        args(
            tiny_root,
            db,
            "--sampler",
            sampler,
            "--n-trials",
            "3",
            "--max-epochs",
            "1",
            "--pruner",
            "none",
        )
    )
    assert code == 0
    study = study_of(db, f"mnist-default-{sampler}-e1-v200")
    trials = study.get_trials()
    assert len(trials) == 3 and all(t.state.name == "COMPLETE" for t in trials)
    claims = [c["sampler"] for t in trials for c in records.claims_of(study, t)]
    assert claims == [SAMPLER_CLASSES[sampler]] * 3
    assert {"layers", "units", "optimizer", "lr_factor", "batch_size"} <= set(trials[0].params)


def test_samplers_explore_a_designs_levels(tiny_root, tmp_path):
    db = tmp_path / "s.db"
    run_ok(
        tiny_root,
        db,
        "--sampler",
        "random",
        "--design",
        "full",
        "--n-trials",
        "2",
        "--max-epochs",
        "1",
    )
    trials = complete(study_of(db, "mnist-full-random-e1-v200"))
    assert len(trials) == 2 and trials[0].params["layers"] in (1, 3, 5)


def _tpe_params(root: Path, db: Path, seed: str) -> list[dict]:
    assert (
        main(
            args(
                root,
                db,
                "--sampler",
                "tpe",
                "--n-trials",
                "4",
                "--max-epochs",
                "1",
                "--seed",
                seed,
                "--pruner",
                "none",
            )
        )
        == 0
    )
    return [t.params for t in study_of(db, "mnist-default-tpe-e1-v200").get_trials()]


@pytest.mark.slow
def test_the_same_seed_suggests_the_same_sequence(tiny_root, tmp_path):
    first = _tpe_params(tiny_root, tmp_path / "a.db", "3")
    again = _tpe_params(tiny_root, tmp_path / "b.db", "3")
    other = _tpe_params(tiny_root, tmp_path / "c.db", "4")
    assert first == again and first != other


@pytest.mark.parametrize("name", [p for p in PRUNERS if p != "none"])
def test_a_pruner_prunes_a_clearly_worse_trial(name):
    study = optuna.create_study(direction="maximize", pruner=make_pruner(name, 10))
    for _ in range(20):  # good trials: accuracy climbs from 0.80 to 0.98
        trial = study.ask()
        for step in range(1, 11):
            trial.report(0.8 + 0.02 * (step - 1), step)
            assert not trial.should_prune()  # as the objective asks: this records the rungs
        study.tell(trial, 0.98)
    bad = study.ask()
    pruned_at = None
    for step in range(1, 11):
        bad.report(0.2 - 0.01 * step, step)  # clearly worse, and getting no better
        if bad.should_prune():
            pruned_at = step
            break
    assert pruned_at is not None and pruned_at < 10


def test_the_pruner_none_is_optunas_pruner_that_never_prunes():
    # Our mapping only: that NopPruner never prunes is Optuna's to test.
    assert type(PRUNERS["none"](10)) is optuna.pruners.NopPruner


@pytest.mark.slow
def test_a_pruned_trial_keeps_its_partial_history(tiny_root, tmp_path):
    db = tmp_path / "s.db"
    run_ok(
        tiny_root,
        db,
        "--sampler",
        "random",
        "--n-trials",
        "12",
        "--max-epochs",
        "3",
        "--pruner",
        "median",
        "--seed",
        "2",
    )
    study = study_of(db, "mnist-default-random-e3-v200")
    trials = study.get_trials()
    # Stopped by the pruner, not ended by a diverging loss (also PRUNED, but not pruning).
    stopped = [t for t in trials if t.user_attrs.get("reason", "").startswith("pruned after")]
    assert stopped, [(t.state.name, t.user_attrs.get("reason")) for t in trials]
    for t in stopped:
        history = records.history(study, t)
        epochs = [r["epoch"] for r in history]
        assert t.state.name == "PRUNED" and epochs == list(range(1, len(epochs) + 1))
        assert len(epochs) < 3 and t.user_attrs["reason"] == f"pruned after epoch {epochs[-1]}"
        assert t.intermediate_values == {r["epoch"]: r["val_acc"] for r in history}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[params]\nwidth = [1, 2]\n", "params.width: unknown name"),
        ("[params]\nactivation = []\n", "params.activation: empty choice list"),
        ("[params]\nlr = { low = 1.0, high = 0.1 }\n", "params.lr: low 1.0 is above high 0.1"),
        ('[params]\nactivation = ["relu", "swish"]\n', "params.activation: 'swish' is not one"),
        ("[params]\nunits = { low = 0, high = 4, log = true }\n", "params.units.low"),
        ("[params\n", "not valid TOML"),
        ('[params]\nschedule = "linear"\n', "params.schedule: 'linear' is not one of constant"),
        ("[params]\ngamma = 1.5\n", "params.gamma: 1.5 is out of range for gamma"),
        ("[params]\nlabel_smoothing = 1.0\n", "params.label_smoothing: 1.0 is out of range"),
        ("[params]\ninput_dropout = [0.1, 1.0]\n", "params.input_dropout: 1.0 is out of range"),
    ],
)
def test_a_bad_space_file_is_one_line_naming_the_key(body, message, tmp_path, capsys):
    path = tmp_path / "space.toml"
    path.write_text(body)
    with pytest.raises(UsageError) as err:
        load_space(path)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert main(["--space", str(path), "--storage", f"sqlite:///{tmp_path}/s.db"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.parametrize("path", sorted(SPACES_DIR.glob("*.toml")), ids=lambda p: p.stem)
def test_shipped_spaces_load_through_the_user_code_path(path):
    space = load_space(path)
    assert space.name == path.stem and space.params


def test_trial_budget_counts_for_the_whole_study(tiny_root, tmp_path):
    db = tmp_path / "s.db"
    common = ["--sampler", "random", "--max-epochs", "1", "--study-name", "b"]
    assert main(args(tiny_root, db, *common, "--n-trials", "2")) == 0
    assert main(args(tiny_root, db, *common, "--n-trials", "3")) == 0
    assert len(complete(study_of(db, "b"))) == 3


def test_timeout_counts_trial_time_for_the_whole_study(tiny_root, tmp_path):
    db = tmp_path / "s.db"
    common = ["--sampler", "random", "--max-epochs", "1", "--study-name", "t", "--timeout", "0.01"]
    assert main(args(tiny_root, db, *common)) == 0
    assert len(complete(study_of(db, "t"))) == 1  # the first trial used the whole budget
    assert main(args(tiny_root, db, *common)) == 0
    assert len(complete(study_of(db, "t"))) == 1


def test_multi_objective_search_returns_a_pareto_front(tiny_root, tmp_path, capsys):
    space = tmp_path / "widths.toml"
    space.write_text('name = "widths"\n[params]\nlayers = 1\nunits = [2, 8, 32, 128]\n')
    db = tmp_path / "s.db"
    code = main(
        args(
            tiny_root,
            db,
            "--sampler",
            "grid",
            "--space",
            str(space),
            "--objectives",
            "accuracy,params",
            "--max-epochs",
            "2",
        )
    )
    assert code == 0
    study = study_of(db, "mnist-widths-params-e2-v200")
    assert len(study.directions) == 2 and len(study.best_trials) >= 2
    assert "Pareto front" in capsys.readouterr().out


def test_several_objectives_refuse_a_pruner(tmp_path, capsys):
    code = main(
        [
            "--objectives",
            "accuracy,seconds",
            "--pruner",
            "median",
            "--storage",
            f"sqlite:///{tmp_path}/s.db",
        ]
    )
    assert code == 2 and "cannot prune" in capsys.readouterr().err


def test_best_prints_a_space_file_that_reruns_the_best_configuration(tiny_root, tmp_path, capsys):
    db = tmp_path / "s.db"
    assert (
        main(args(tiny_root, db, "--sampler", "random", "--n-trials", "3", "--max-epochs", "1"))
        == 0
    )
    capsys.readouterr()
    assert (
        best.main(["--study-name", "mnist-default-random-e1-v200", "--storage", f"sqlite:///{db}"])
        == 0
    )
    toml = capsys.readouterr().out
    path = tmp_path / "best.toml"
    path.write_text(toml)
    space = load_space(path)
    top = best_trial(study_of(db, "mnist-default-random-e1-v200"))
    # As it ran: one epoch (--max-epochs 1), its warm-up shrunk with it.
    assert {k: p.value for k, p in space.params.items()} == {
        **top.params,
        "epochs": 1,
        "warmup_epochs": top.params["warmup_epochs"] / top.params["epochs"],
    }
    assert space.settings == {
        "dataset": "mnist",
        "seed": 1,
        "val_size": 200,
        "judge_epoch": "last",
        "precision": "auto",  # bf16 products where the CPU has them: the rerun does the same
    }
    # No caps on the command: the file carries them.
    run_ok(tiny_root, db, "--sampler", "grid", "--space", str(path), "--study-name", "rerun")
    (rerun,) = complete(study_of(db, "rerun"))
    assert rerun.value == top.value and rerun.user_attrs["epochs"] == 1


def test_best_of_a_missing_study_is_one_line(tmp_path, capsys):
    db = tmp_path / "s.db"
    optuna.create_study(study_name="there", storage=f"sqlite:///{db}")
    assert best.main(["--study-name", "nope", "--storage", f"sqlite:///{db}"]) == 1
    err = capsys.readouterr().err
    assert "no study 'nope'" in err and "there" in err and err.count("\n") == 1


@pytest.mark.parametrize(("sampler", "package"), [("cmaes", "cmaes"), ("gp", "scipy")])
def test_a_sampler_whose_package_is_missing_names_the_extra(
    sampler, package, tmp_path, capsys, monkeypatch
):
    monkeypatch.setitem(sys.modules, package, None)  # as if search[samplers] were not installed
    assert main(["--sampler", sampler, "--storage", f"sqlite:///{tmp_path}/s.db"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--sampler {sampler}" in err and "search[samplers]" in err


@pytest.mark.parametrize(
    ("body", "extra", "where"),
    [
        ('schedule = "cosine"\nwarmup_epochs = 5\nepochs = 2\n', [], "params.warmup_epochs"),
        ("warmup_epochs = { low = 0, high = 3 }\nepochs = [3, 9]\n", [], "params.warmup_epochs"),
        ("warmup_epochs = 2\n", ["--sampler", "random", "--epochs", "2"], "--epochs 2"),
    ],
)
def test_a_warm_up_as_long_as_a_run_is_refused_with_one_line(
    body, extra, where, tiny_root, tmp_path, capsys
):
    space = tmp_path / "warm.toml"
    space.write_text(f"[params]\n{body}")
    db = tmp_path / "s.db"
    assert main(args(tiny_root, db, "--space", str(space), *extra)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and where in err and "warmup_epochs: up to" in err
    assert not db.exists() or not optuna.get_all_study_names(f"sqlite:///{db}")


def test_a_cosine_schedule_runs_from_a_space_file(tiny_root, tmp_path):
    space = tmp_path / "cos.toml"
    space.write_text('[params]\nschedule = "cosine"\nwarmup_epochs = 1\nepochs = 2\n')
    db = tmp_path / "s.db"
    run_ok(tiny_root, db, "--sampler", "grid", "--space", str(space))
    (trial,) = complete(study_of(db, "mnist-cos-v200"))
    assert records.config(study_of(db, "mnist-cos-v200"), trial)["train"]["schedule"] == {
        "kind": "cosine",
        "gamma": 0.7,
        "warmup_epochs": 1.0,
    }
