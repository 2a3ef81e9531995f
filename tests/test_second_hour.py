"""A user's second hour: checked early, the exit-code table kept, the final step and
``search.best`` saying what they did."""

from __future__ import annotations

import importlib
from pathlib import Path

import optuna
import pytest

from search import best, final, report
from search.errors import EXIT_CODES
from search.run import main
from search.study.space.samplers import MULTI_OBJECTIVE, SAMPLERS
from search.views import best as best_view

TINY = ["--val-size", "200", "--workers", "1", "--quiet"]


def cli(root: Path, db: Path, *extra: str) -> list[str]:
    return ["--data-dir", str(root), "--storage", f"sqlite:///{db}", *TINY, *extra]


def listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def run_module(module: str, argv: list[str], monkeypatch, capsys) -> tuple[int, str]:
    """``python -m search.MODULE ARGV``'s exit code and stderr, run in this process (a refusal
    needs no process of its own, and this one has already imported torch)."""
    try:
        code = importlib.import_module(f"search.{module}").main(argv)
    except SystemExit as e:  # argparse's own refusals
        code = e.code
    return code, capsys.readouterr().err


NAMED = ["--study-name", "s"]
BOGUS = {"SEARCH_STORAGE": "bogus"}
REFUSED = [
    # (id, module, argv after the storage, extra environment, exit code, what the line names)
    ("long-study-name", "run", ["--study-name", "n" * 600], {}, 2, "--study-name"),
    ("lr-and-lr-factor", "run", ["--space", "both.toml"], {}, 2, "params.lr_factor"),
    ("unknown-database", "run", ["--storage", "foo://bar"], {}, 2, "'foo'"),
    ("unknown-database-best", "best", ["--storage", "foo://bar", *NAMED], {}, 2, "'foo'"),
    ("bogus-variable", "run", [], BOGUS, 2, "$SEARCH_STORAGE"),
    ("bogus-variable-worker", "worker", NAMED, BOGUS, 2, "$SEARCH_STORAGE"),
]


@pytest.mark.parametrize(
    ("module", "argv", "env", "code", "named"),
    [case[1:] for case in REFUSED],
    ids=[case[0] for case in REFUSED],
)
def test_a_refused_command_is_one_line_its_exit_code_and_creates_nothing(
    module, argv, env, code, named, tiny_root, tmp_path, monkeypatch, capsys
):
    (tmp_path / "both.toml").write_text("[params]\nlr = 0.1\nlr_factor = 1.0\n")
    monkeypatch.chdir(tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    before = listing(tmp_path)
    storage = [] if "--storage" in argv or env else ["--storage", f"sqlite:///{tmp_path}/s.db"]
    data = ["--data-dir", str(tiny_root), "--val-size", "200"] if module == "run" else []
    returned, err = run_module(module, [*storage, *data, *argv], monkeypatch, capsys)
    assert returned == code and code in EXIT_CODES
    assert named in one_line(err)
    assert listing(tmp_path) == before


@pytest.fixture
def queued_only(tiny_root, tmp_path) -> Path:
    """A study with trials queued and none run."""
    db = tmp_path / "s.db"
    assert main(cli(tiny_root, db, "--study-name", "s", "--create-only")) == 0
    return db


@pytest.mark.parametrize("command", [best.main, report.main, final.main])
def test_no_completed_trial_is_exit_code_1_for_every_reader(command, queued_only, capsys):
    argv = ["--storage", f"sqlite:///{queued_only}", "--study-name", "s"]
    if command is report.main:
        argv += ["--out", str(queued_only.parent / "report")]
    capsys.readouterr()
    assert command(argv) == 1
    one_line(capsys.readouterr().err)
    assert not (queued_only.parent / "report").exists()


def test_a_sampler_on_a_space_of_one_point_runs_it_once(tiny_root, tmp_path, capsys):
    space = tmp_path / "one.toml"
    space.write_text("[params]\nunits = 32\nepochs = 1\n")
    db = tmp_path / "s.db"
    argv = cli(tiny_root, db, "--sampler", "random", "--space", str(space), "--study-name", "s")
    assert main(argv) == 0
    assert main(argv) == 0  # again: nothing left to run
    trials = optuna.load_study(study_name="s", storage=f"sqlite:///{db}").trials
    assert [t.state.name for t in trials] == ["COMPLETE"]


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_several_objectives_run_with_every_sampler_the_rule_allows(sampler, tmp_path, capsys):
    argv = ["--storage", f"sqlite:///{tmp_path}/s.db", "--sampler", sampler, "--create-only"]
    code = main([*argv, "--objectives", "accuracy,seconds", "--quiet"])
    assert code == (2 if sampler == "cmaes" else 0)  # CMA-ES alone has one objective
    assert (sampler in MULTI_OBJECTIVE) == (code == 0)  # and the rule says so


@pytest.fixture(scope="module")
def capped(tiny_root, tmp_path_factory) -> Path:
    """A random search capped at 1 epoch on 600 training images."""
    db = tmp_path_factory.mktemp("capped") / "s.db"
    argv = cli(tiny_root, db, "--sampler", "random", "--n-trials", "3", "--study-name", "s")
    assert main([*argv, "--max-epochs", "1", "--train-limit", "600"]) == 0
    return db


def test_the_final_step_of_a_capped_study_says_its_caps_and_one_seed_has_no_spread(
    capped, tiny_root, capsys
):
    argv = ["--storage", f"sqlite:///{capped}", "--study-name", "s", "--data-dir"]
    assert final.main([*argv, str(tiny_root), "--top", "1", "--seeds", "1", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    record = optuna.load_study(study_name="s", storage=f"sqlite:///{capped}").user_attrs["final"]
    assert record["caps"] == {"train_limit": 600, "max_epochs": 1}
    assert record["train_images"] == 600 and record["configs"][0]["std"]["test_acc"] is None
    first = out.splitlines()[1]  # after the study's line
    assert "--train-limit 600" in first and "--max-epochs 1" in first
    assert "±" not in out


def test_best_of_a_pareto_study_takes_its_first_objective_and_names_it(tiny_root, tmp_path):
    db = tmp_path / "s.db"
    argv = cli(tiny_root, db, "--sampler", "random", "--n-trials", "4", "--study-name", "s")
    assert main([*argv, "--max-epochs", "1", "--objectives", "accuracy,params"]) == 0
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{db}")
    top = max(study.best_trials, key=lambda t: (t.values[0], -t.number))
    text = best_view.to_toml(study, best_view.best_trial(study))
    assert text.startswith(f"# Best trial {top.number} ") and "val_acc" in text.splitlines()[0]
