"""A user's first hour: no runaway study, displays that say what ran, one line for every
mistake, and nothing left behind by a refused command."""

from __future__ import annotations

import subprocess
from pathlib import Path

import optuna
import pytest
from optuna_dashboard import get_note

from search import best
from search.errors import UsageError
from search.run import main
from search.study.running.budget import counted_trials
from search.study.running.failures import REPEATS
from search.study.space.spacefile import parse_space
from search.tasks.mlp import task as objective  # the built-in task calls fit

TINY = ["--val-size", "200", "--workers", "1"]
RUNAWAY = 20  # trials of a failing run after which a test calls it a runaway


def cli(root: Path, db: Path, *extra: str) -> list[str]:
    return ["--data-dir", str(root), "--storage", f"sqlite:///{db}", *TINY, *extra]


def study_of(db: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{db}")


def exit_code(argv: list[str]) -> int:
    """``main``'s code, also for an argument argparse refuses (it exits)."""
    try:
        return main(argv)
    except SystemExit as e:
        return int(e.code)


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and lines[0].startswith(("error:", "python -m search.run"))
    return lines[0]


def listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.parametrize(
    "line",
    [
        "lr_factor = nan",
        "lr_factor = inf",
        "lr_factor = { low = nan, high = 1.0 }",
        "dropout = [0.1, nan]",
        "weight_decay = { low = 1e-6, high = -inf }",
    ],
)
def test_a_space_value_that_is_not_finite_is_refused_before_any_study(
    line, tiny_root, tmp_path, capsys
):
    space = tmp_path / "bad.toml"
    space.write_text(f'name = "bad"\n[params]\n{line}\n')
    argv = cli(tiny_root, tmp_path / "s.db", "--sampler", "tpe", "--space", str(space))
    assert main([*argv, "--n-trials", "1", "--quiet"]) == 2
    name = line.split()[0]
    assert f"params.{name}" in one_error_line(capsys.readouterr().err)
    assert listing(tmp_path) == {"bad.toml"}  # no database, no study, no trial


def fail_every_fit(monkeypatch: pytest.MonkeyPatch, same_reason: bool = True) -> None:
    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        if len(calls) > RUNAWAY:  # ends a run that nothing else stopped: the test fails
            raise UsageError("runaway: nothing stopped the failing trials")
        raise RuntimeError("boom" if same_reason else f"boom {len(calls)}")

    monkeypatch.setattr(objective, "fit", broken)


@pytest.mark.parametrize("sampler", ["grid", "random", "tpe"])
def test_repeated_failures_stop_the_study_with_one_line_naming_the_first(
    sampler, tiny_root, tmp_path, capsys, monkeypatch
):
    fail_every_fit(monkeypatch)
    db = tmp_path / "s.db"
    argv = cli(tiny_root, db, "--sampler", sampler, "--max-epochs", "1", "--quiet")
    assert main([*argv, "--study-name", "s", "--n-trials", "50"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith(f"error: stopped: {REPEATS} trials in a row failed")
    assert "first trial 0: RuntimeError: boom" in err[-1]
    # Each failure was printed as it happened, --quiet or not.
    assert sum("FAIL" in line and "RuntimeError: boom" in line for line in err) == REPEATS
    ran = [t.state.name for t in study_of(db, "s").trials if t.state.name != "WAITING"]
    assert ran == ["FAIL"] * REPEATS  # a grid's other points stay queued
    # A study whose trials all failed still has its dashboard note, saying so.
    assert f"{REPEATS} failed" in get_note(study_of(db, "s"))


def test_the_budget_counts_failed_trials(tiny_root, tmp_path, capsys, monkeypatch):
    fail_every_fit(monkeypatch, same_reason=False)  # never the same reason: no early stop
    db = tmp_path / "s.db"
    argv = cli(tiny_root, db, "--sampler", "random", "--max-epochs", "1", "--quiet")
    assert main([*argv, "--n-trials", "4", "--study-name", "s"]) == 1  # nothing was learned
    assert [t.state.name for t in study_of(db, "s").trials] == ["FAIL"] * 4
    assert "4 trials: 4 failed" in capsys.readouterr().out


def test_an_interrupted_trial_does_not_count_toward_the_budget(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/s.db", direction="maximize")
    study.add_trial(optuna.trial.create_trial(value=0.5))
    for reason in ("RuntimeError: boom", "interrupted", "interrupted: no heartbeat for 150 s"):
        trial = study.ask()
        trial.set_user_attr("fail_reason", reason)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    study.ask()  # running
    assert counted_trials(study) == 3  # complete, failed, running; not the interrupted two


SPACE = """name = "mine"
[params]
activation = ["relu", "tanh"]
lr_factor = { low = 0.5, high = 2.0 }
"""


def run_space(root: Path, tmp_path: Path, text: str, *extra: str) -> int:
    space = tmp_path / "mine.toml"
    space.write_text(text)
    argv = cli(root, tmp_path / "s.db", "--sampler", "random", "--space", str(space))
    return main([*argv, "--n-trials", "1", "--max-epochs", "1", "--quiet", *extra])


def test_an_edited_space_file_under_its_old_name_is_refused_naming_the_changed_keys(
    tiny_root, tmp_path, capsys
):
    assert run_space(tiny_root, tmp_path, SPACE) == 0
    capsys.readouterr()
    edited = SPACE.replace('"tanh"]', '"gelu"]').replace("high = 2.0", "high = 3.0")
    assert run_space(tiny_root, tmp_path, edited, "--n-trials", "2") == 2
    line = one_error_line(capsys.readouterr().err)
    assert "was made with another space" in line
    assert "params.activation" in line and "params.lr_factor" in line
    assert len(study_of(tmp_path / "s.db", "mnist-mine-random-e1-v200").trials) == 1


def test_a_space_file_edited_only_in_its_comments_resumes(tiny_root, tmp_path):
    assert run_space(tiny_root, tmp_path, SPACE) == 0
    assert run_space(tiny_root, tmp_path, "# tried on Monday\n" + SPACE, "--n-trials", "2") == 0
    assert len(study_of(tmp_path / "s.db", "mnist-mine-random-e1-v200").trials) == 2


def test_allow_space_change_takes_a_moved_range_and_records_it(tiny_root, tmp_path):
    assert run_space(tiny_root, tmp_path, SPACE) == 0
    moved = SPACE.replace("high = 2.0", "high = 3.0")
    assert run_space(tiny_root, tmp_path, moved, "--n-trials", "2", "--allow-space-change") == 0
    study = study_of(tmp_path / "s.db", "mnist-mine-random-e1-v200")
    (change,) = study.user_attrs["space_changes"]
    assert change["from_trial"] == 1 and change["keys"] == ["params.lr_factor.high (2.0 -> 3.0)"]
    assert study.user_attrs["space_toml"] == moved and len(study.trials) == 2


def test_allow_space_change_refuses_a_choice_list_optuna_cannot_hold(tiny_root, tmp_path, capsys):
    assert run_space(tiny_root, tmp_path, SPACE) == 0
    capsys.readouterr()
    edited = SPACE.replace('"tanh"]', '"gelu"]')
    assert run_space(tiny_root, tmp_path, edited, "--allow-space-change") == 2
    line = one_error_line(capsys.readouterr().err)
    assert "--allow-space-change: params.activation" in line


@pytest.mark.parametrize(
    ("chosen", "conditional", "applies"),
    [
        ({"regularization": "none"}, "reg_strength", False),
        ({"regularization": "l2"}, "reg_strength", True),
        ({"schedule": "constant"}, "gamma", False),
        ({"schedule": "step"}, "gamma", True),
    ],
)
def test_a_conditional_parameter_is_suggested_only_where_it_applies(chosen, conditional, applies):
    other = next(iter(chosen))
    choices = {"regularization": '["none", "l2"]', "schedule": '["constant", "step"]'}[other]
    bounds = "{ low = 1e-5, high = 0.1 }" if conditional == "reg_strength" else "0.5"
    space = parse_space(f"[params]\n{other} = {choices}\n{conditional} = {bounds}\n", "test")
    fixed = {**chosen, conditional: 0.01 if conditional == "reg_strength" else 0.5}
    params = space.suggest(optuna.trial.FixedTrial(fixed))
    assert (conditional in params) == applies


def test_a_sampler_in_its_random_start_up_says_so(tiny_root, tmp_path, capsys):
    argv = cli(tiny_root, tmp_path / "s.db", "--sampler", "tpe", "--max-epochs", "1")
    assert main([*argv, "--n-trials", "2"]) == 0
    captured = capsys.readouterr()
    assert "(tpe's random start-up: 1 of 10 trials)" in captured.err
    assert "note: tpe's random start-up: 2 of 10 trials" in captured.out


def test_each_trial_is_timed_after_an_untimed_warm_up_of_its_configuration(
    tiny_root, tmp_path, monkeypatch
):
    calls = []
    real_fit, real_warm_up = objective.fit, objective.warm_up

    def warm_up(model_cfg, cfg, data):
        calls.append(("warm_up", model_cfg, cfg))
        return real_warm_up(model_cfg, cfg, data)

    def fit(model_cfg, cfg, data, *args, **kwargs):
        calls.append(("fit", model_cfg, cfg))
        return real_fit(model_cfg, cfg, data, *args, **kwargs)

    monkeypatch.setattr(objective, "warm_up", warm_up)
    monkeypatch.setattr(objective, "fit", fit)
    argv = cli(tiny_root, tmp_path / "s.db", "--sampler", "random", "--max-epochs", "1")
    assert main([*argv, "--n-trials", "2", "--quiet"]) == 0
    assert [c[0] for c in calls] == ["warm_up", "fit"] * 2
    assert calls[0][1:] == calls[1][1:] and calls[2][1:] == calls[3][1:]


@pytest.mark.parametrize(
    ("extra", "code", "names"),
    [
        (["--seed", "-1"], 2, "--seed"),
        (["--seed", "4294967296"], 2, "--seed"),
        (["--n-trials", "-3"], 2, "--n-trials"),
        (["--timeout", "nan"], 2, "--timeout"),
        (["--train-limit", "0"], 2, "--train-limit"),
        (["--val-size", "1200"], 2, "--val-size"),
        (["--space", "BATCH"], 2, "params.batch_size"),
        (["--space", "missing.toml"], 2, "--space"),
        (["--epochs", "3"], 2, "--epochs"),
        (["--sampler", "random", "--warm-start", "nope"], 2, "--warm-start"),
        (["--data-dir", "DATA/MNIST/raw"], 1, "did you mean"),
        (["--data-dir", "nowhere"], 1, "not in"),
        (["--storage", "sqlite://"], 1, "in-memory SQLite database keeps nothing"),
        (["--artifact-dir", "/proc/nope"], 1, "--artifact-dir /proc/nope: cannot write"),
    ],
)
def test_a_bad_input_is_one_line_with_its_exit_code_and_leaves_nothing_behind(
    extra, code, names, tiny_root, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "big.toml").write_text('name = "big"\n[params]\nbatch_size = 100000\n')
    before = listing(tmp_path)
    extra = [
        {"BATCH": "big.toml", "DATA/MNIST/raw": str(tiny_root / "MNIST" / "raw")}.get(a, a)
        for a in extra
    ]
    argv = ["--storage", "sqlite:///study_db/s.db", "--data-dir", str(tiny_root), *TINY]
    assert exit_code([*argv, "--study-name", "v", *extra]) == code
    assert names in one_error_line(capsys.readouterr().err)
    assert listing(tmp_path) == before  # no database, no folder, no data


@pytest.mark.slow
def test_a_refused_command_leaves_no_study_to_block_the_corrected_one(tiny_root, tmp_path, capsys):
    db = tmp_path / "s.db"
    argv = cli(tiny_root, db, "--max-epochs", "1", "--quiet", "--study-name", "v")
    assert main([*argv, "--val-size", "1200"]) == 2
    assert not db.exists()
    assert main(argv) == 0  # --val-size 200, from TINY


def test_a_new_database_is_named_on_the_first_line(tiny_root, tmp_path, capsys):
    db = tmp_path / "typo" / "s.db"
    argv = cli(tiny_root, db, "--sampler", "random", "--max-epochs", "1", "--quiet")
    assert main([*argv, "--n-trials", "1"]) == 0
    assert capsys.readouterr().err.splitlines()[0] == f"new database {db}"
    assert main([*argv, "--n-trials", "1"]) == 0
    assert "new database" not in capsys.readouterr().err


def test_resuming_a_finished_study_says_there_is_nothing_to_run(tiny_root, tmp_path, capsys):
    argv = cli(tiny_root, tmp_path / "s.db", "--sampler", "random", "--max-epochs", "1")
    assert main([*argv, "--n-trials", "1"]) == 0
    capsys.readouterr()
    assert main([*argv, "--n-trials", "1"]) == 0
    assert "nothing to run: study mnist-default-random-e1-v200: its budget of 1 trials" in (
        capsys.readouterr().err
    )


def test_create_only_names_the_real_storage_in_its_worker_command(tiny_root, tmp_path, capsys):
    db = tmp_path / "s.db"
    argv = cli(tiny_root, db, "--sampler", "random", "--create-only", "--study-name", "c")
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"python -m search.worker --storage sqlite:///{db} --study-name c" in out


def test_the_progress_bar_stays_out_of_a_log_file(tiny_root, tmp_path, capsys):
    argv = cli(tiny_root, tmp_path / "s.db", "--sampler", "random", "--max-epochs", "1")
    assert main([*argv, "--n-trials", "2"]) == 0  # stderr is captured here: not a terminal
    said = capsys.readouterr().err
    assert "\r" not in said and "trial/s" not in said
    assert said.count("COMPLETE") == 2  # a line per trial instead


@pytest.mark.slow
def test_a_capped_run_shows_what_ran_and_its_best_file_reproduces_it(real_root, tmp_path, capsys):
    db = tmp_path / "s.db"
    caps = ["--max-epochs", "1", "--train-limit", "2000", "--quiet", "--workers", "1"]
    argv = ["--data-dir", str(real_root), "--storage", f"sqlite:///{db}", *caps]
    assert main([*argv, "--sampler", "random", "--n-trials", "2", "--study-name", "s"]) == 0
    out = capsys.readouterr().out
    assert "2,000 training images (--train-limit 2000)" in out and "at most 1 epoch a" in out
    assert all(line.split()[-5] == "1" for line in out.splitlines() if "COMPLETE" in line)
    note = get_note(study_of(db, "s"))
    assert "2,000 training images" in note and "epochs=1" in note and "epochs=15" not in note

    assert best.main(["--study-name", "s", "--storage", f"sqlite:///{db}"]) == 0
    toml = capsys.readouterr().out
    assert "\nepochs = 1\n" in toml and "\ntrain_limit = 2000\n" in toml
    (tmp_path / "best.toml").write_text(toml)
    rerun = ["--data-dir", str(real_root), "--storage", f"sqlite:///{db}", "--quiet"]
    assert main([*rerun, "--sampler", "grid", "--space", str(tmp_path / "best.toml")]) == 0
    (again,) = study_of(db, "mnist-best-of-s-n2000").trials
    assert again.value == study_of(db, "s").best_value


def test_the_lock_file_beside_the_default_database_is_ignored_by_git():
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    done = subprocess.run(
        ["git", "check-ignore", "-q", "study_db/mnist.lock"], cwd=root, capture_output=True
    )
    assert done.returncode == 0
