"""Every service feature for a user's task, each on a small example task given with ``--task``.

The task is tests/tasks/service.py: good.py's tiny classifier on synthetic data (no download),
minimising ``val_loss``, with weights kept and a test split read in the final step. Its
default space is good.toml (a log range and a choice); a grid gets a space file of choices.
Workers run on SQLite, PostgreSQL (``SEARCH_TEST_POSTGRES_URL``) and SLURM (``sbatch``); under
``CI=true`` a missing database or cluster fails instead of skipping.
"""

from __future__ import annotations

import contextlib
import csv
import html
import json
import os
import re
import select
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import torch

from search import best, final, report
from search.run import main as run_main
from search.study.running import checkpoints
from search.study.space.samplers import PRUNERS, SAMPLERS
from search.study.storage import records
from search.task import DataContext
from search.tasks.loading import load_task
from search.views.charts import CHART_TITLES, target_name, title_of

from . import launch
from .pausing import Pause

TASK = Path(__file__).resolve().parent / "tasks" / "service.py"
METRIC = "val_loss"  # the task's OBJECTIVE, minimised
QUEUE_WAIT_S = 300  # a 2-task array of this grid takes well under a minute; bounds a broken test
GRID = """name = "grid"
[params]
lr = [0.05, 0.1, 0.2, 0.5]
hidden = [16, 8]
momentum = 0.9
epochs = 5
"""
GRID_POINTS = 8
ONE_POINT = """name = "one"
[params]
lr = 0.1
hidden = 16
momentum = 0.9
epochs = 5
"""


def unavailable(reason: str) -> None:
    if os.environ.get("CI"):  # CI provides PostgreSQL and SLURM: never skip silently there
        pytest.fail(f"CI is set but {reason}")
    pytest.skip(reason)


def space_file(folder: Path, text: str) -> Path:
    """The space ``text`` as a file in ``folder``, named after its ``name``."""
    path = folder / f"{tomllib.loads(text)['name']}.toml"
    path.write_text(text)
    return path


def task_run(storage: str, *extra: str) -> list[str]:
    """``search.run``'s options for the task, as a user types them."""
    return ["--task", str(TASK), "--storage", storage, "--quiet", *extra]


def only_study(storage: str) -> optuna.Study:
    (name,) = optuna.get_all_study_names(storage)
    return optuna.load_study(study_name=name, storage=storage)


def points(trials: list[optuna.trial.FrozenTrial]) -> list[str]:
    return sorted(t.user_attrs["point"] for t in trials if t.state.name == "COMPLETE")


def check_values_are_the_tasks_metric(
    study: optuna.Study, trials: list[optuna.trial.FrozenTrial]
) -> None:
    """Each trial's value is the task's metric: as train returned it (a complete trial) or as
    it reported it last (a pruned one); the pruner saw it every epoch."""
    for t in trials:
        history = records.history(study, t)
        assert t.values[0] == t.user_attrs["metrics"][METRIC] == history[-1][METRIC]
        assert t.intermediate_values == {row["epoch"]: row[METRIC] for row in history}


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/s.db"
    return request.getfixturevalue("pg_url")


@pytest.mark.slow
def test_four_local_workers_run_each_point_of_the_tasks_grid_exactly_once(storage, tmp_path):
    grid = space_file(tmp_path, GRID)
    argv = task_run(storage, "--space", str(grid), "--max-epochs", "2", "--workers", "4")
    # A database server's default artifact folder is study_db/artifacts in the current folder.
    argv += ["--artifact-dir", str(tmp_path / "artifacts")]
    done = launch.run(
        [sys.executable, "-m", "search.run", *argv], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "locked" not in done.stderr
    study = only_study(storage)
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * GRID_POINTS
    assert len(set(points(trials))) == GRID_POINTS
    assert [len(records.claims_of(study, t)) for t in trials] == [1] * GRID_POINTS
    check_values_are_the_tasks_metric(study, trials)
    # One claim id per process, none shared. How many of the four took points is the OS's
    # scheduling (on a busy machine one may take them all), so it is not asserted.
    owners = {(t.user_attrs["worker"]["pid"], t.user_attrs["worker"]["worker_id"]) for t in trials}
    assert len({pid for pid, _ in owners}) == len({claim for _, claim in owners}) == len(owners)


@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_every_sampler_searches_the_tasks_space_for_its_metric(sampler, tmp_path):
    # A grid needs choices: the task's own space has a range, so it gets the grid's file.
    space = ["--space", str(space_file(tmp_path, GRID))] if sampler == "grid" else []
    storage = f"sqlite:///{tmp_path}/s.db"
    searched = ["--sampler", sampler, "--pruner", "none", "--n-trials", "3", "--max-epochs", "2"]
    assert run_main([*task_run(storage, *searched, *space), "--workers", "1"]) == 0
    study = only_study(storage)
    ran = [t for t in study.trials if t.state.name != "WAITING"]  # a grid queues its points
    assert [t.state.name for t in ran] == ["COMPLETE"] * 3
    assert study.metric_names == [METRIC]
    check_values_are_the_tasks_metric(study, ran)


@pytest.mark.parametrize("pruner", list(PRUNERS))
def test_every_pruner_judges_the_tasks_trials_by_its_metric(pruner, tmp_path):
    storage = f"sqlite:///{tmp_path}/s.db"
    searched = ["--sampler", "random", "--pruner", pruner, "--n-trials", "4", "--max-epochs", "2"]
    assert run_main([*task_run(storage, *searched), "--workers", "1"]) == 0
    study = only_study(storage)
    assert len(study.trials) == 4
    assert {t.state.name for t in study.trials} <= {"COMPLETE", "PRUNED"}
    check_values_are_the_tasks_metric(study, study.trials)


@pytest.fixture
def in_epoch_3(tmp_path: Path) -> Iterator[Pause]:
    """A process that pauses in its third ``ctx.report`` call: inside epoch 3 of its trial,
    with epoch 2's checkpoint kept and epoch 3's not yet."""
    pause = Pause(tmp_path / "pause", after_epochs=2, inside="report")
    yield pause
    pause.close()


def strip_timing(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in history]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "code"),
    [(signal.SIGKILL, -signal.SIGKILL), (signal.SIGTERM, 143)],
    ids=["kill", "term"],
)
def test_a_task_stopped_in_epoch_3_of_5_resumes_from_epoch_2_and_ends_bit_for_bit_the_same(
    sig, code, tmp_path, in_epoch_3
):
    one = ["--sampler", "grid", "--space", str(space_file(tmp_path, ONE_POINT)), "--workers", "1"]
    whole_url, url = f"sqlite:///{tmp_path}/whole.db", f"sqlite:///{tmp_path}/s.db"
    assert run_main(task_run(whole_url, *one)) == 0
    (whole,) = only_study(whole_url).trials

    proc = in_epoch_3.start("search.run", *task_run(url, *one))
    assert in_epoch_3.wait(proc) == proc.pid
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code and "Traceback" not in err, err
    assert run_main(task_run(url, *one)) == 0  # the same command again

    study = only_study(url)
    stopped, resumed = study.trials
    assert stopped.state.name == "FAIL"
    assert stopped.user_attrs["fail_reason"].startswith("interrupted")
    assert [row["epoch"] for row in records.history(study, stopped)] == [1, 2]
    assert resumed.state.name == "COMPLETE"
    assert resumed.user_attrs["resumed_from"] == {"trial": 0, "epoch": 2}
    history = records.history(study, resumed)
    assert [row["epoch"] for row in history] == [1, 2, 3, 4, 5]
    assert strip_timing(history) == strip_timing(records.history(only_study(whole_url), whole))
    assert resumed.values == whole.values
    assert resumed.user_attrs["metrics"] == whole.user_attrs["metrics"]
    assert not list((tmp_path / "artifacts").rglob(checkpoints.CHECKPOINT_FILE))  # all done


def cluster_idle() -> bool:
    done = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=120)
    return done.returncode == 0 and bool({"idle", "mix", "alloc"} & set(done.stdout.split()))


def queued(job: str) -> bool:
    done = subprocess.run(["squeue", "-h", "-j", job], capture_output=True, text=True)
    return done.returncode == 0 and bool(done.stdout.strip())


def wait_for(job: str) -> dict[str, dict[str, str]]:
    """Poll until a job array has left SLURM's queue (SLURM offers no event to wait on; a
    deadline bounds it); each task's record, by task id."""
    deadline = time.monotonic() + QUEUE_WAIT_S
    while queued(job):
        assert time.monotonic() < deadline, f"job {job} still queued after {QUEUE_WAIT_S} s"
        time.sleep(0.2)
    shown = subprocess.run(
        ["scontrol", "show", "job", "-o", job], capture_output=True, text=True, timeout=120
    )
    assert shown.returncode == 0, shown.stderr
    tasks = [
        dict(field.split("=", 1) for field in line.split() if "=" in field)
        for line in shown.stdout.splitlines()
    ]
    return {t["ArrayTaskId"]: t for t in tasks}


@pytest.fixture
def cluster() -> None:
    """A SLURM cluster that takes jobs (tests/test_slurm.py starts this machine's)."""
    if shutil.which("sbatch") is None:
        unavailable("sbatch is not installed (apt-get install slurm-wlm munge)")
    if not cluster_idle():
        unavailable("SLURM is down: as root, bash deploy/slurm/local-cluster.sh start")


@pytest.mark.slow
def test_a_slurm_array_runs_each_point_of_the_tasks_grid_exactly_once(cluster, pg_url, tmp_path):
    grid = space_file(tmp_path, GRID)
    run = ["--task", str(TASK), "--space", str(grid), "--max-epochs", "2"]
    argv = ["slurm", "--study-name", "grid", "--tasks", "2", "--parallel", "2", "--", *run]
    done = launch.run(
        [sys.executable, "-m", "search.submit", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "SEARCH_STORAGE": pg_url},
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    (job,) = re.findall(r"submitted job array (\d+)", done.stdout)
    try:
        tasks = wait_for(job)
    finally:  # a failed wait leaves no task running on a database about to be dropped
        subprocess.run(["scancel", job], capture_output=True, timeout=60)
    assert [(t["JobState"], t["ExitCode"]) for t in tasks.values()] == [("COMPLETED", "0:0")] * 2
    logs = "".join(p.read_text() for p in tmp_path.rglob("slurm-*.out"))
    assert logs and "Traceback" not in logs
    study = optuna.load_study(study_name="grid", storage=pg_url)
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * GRID_POINTS
    assert len(set(points(trials))) == GRID_POINTS
    assert [len(records.claims_of(study, t)) for t in trials] == [1] * GRID_POINTS
    check_values_are_the_tasks_metric(study, trials)


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished random search of the task, 4 trials of 2 epochs; its SQLite file."""
    db = tmp_path_factory.mktemp("searched") / "s.db"
    argv = ["--sampler", "random", "--pruner", "none", "--n-trials", "4", "--max-epochs", "2"]
    assert run_main([*task_run(f"sqlite:///{db}", *argv), "--workers", "1"]) == 0
    return db


def copy_of(db: Path, folder: Path) -> str:
    """A copy of a study's SQLite database in ``folder``, for a test that writes to it."""
    with contextlib.closing(sqlite3.connect(db)) as source:
        with contextlib.closing(sqlite3.connect(folder / db.name)) as target:
            source.backup(target)  # with what its write-ahead log still holds
    return f"sqlite:///{folder / db.name}"


def test_the_final_step_tests_each_model_of_the_task_once_and_its_weights_score_it_again(
    searched, tmp_path, monkeypatch
):
    storage = copy_of(searched, tmp_path)
    reads = tmp_path / "test-reads.jsonl"
    monkeypatch.setenv("SEARCH_TEST_TEST_READS", str(reads))
    name = only_study(storage).study_name
    argv = ["--storage", storage, "--study-name", name, "--top", "2", "--seeds", "2"]
    assert final.main([*argv, "--workers", "1", "--artifact-dir", str(tmp_path / "art")]) == 0

    study = only_study(storage)
    record = study.user_attrs["final"]
    ranked = sorted(study.trials, key=lambda t: (t.value, t.number))  # val_loss, minimised
    assert [c["trial"] for c in record["configs"]] == [t.number for t in ranked[:2]]
    assert (record["chosen_by"], record["metric"]) == (METRIC, "test_loss")
    tested = Counter(reads.read_text().splitlines())
    expected = {
        json.dumps({"seed": seed, "params": c["params"]}, sort_keys=True)
        for c in record["configs"]
        for seed in c["seeds"]
    }
    assert set(tested) == expected and set(tested.values()) == {1}  # 4 models, one read each
    for c in record["configs"]:
        losses = c["metrics"]["test_loss"]
        assert c["seeds"] == [1, 2] and len(losses) == 2
        assert c["mean"]["test_loss"] == pytest.approx(statistics.fmean(losses))
        assert c["std"]["test_loss"] == pytest.approx(statistics.stdev(losses))

    weights = record["weights"]
    assert (weights["trial"], weights["seed"]) == (record["configs"][0]["trial"], 1)
    task = sys.modules[load_task(str(TASK)).train.__module__]
    model = task.make_model(weights["params"])
    model.load_state_dict(torch.load(weights["path"], weights_only=True))
    settings = study.user_attrs["settings"]
    ctx = DataContext(
        seed=settings["seed"],
        device=torch.device("cpu"),
        data_dir=tmp_path,
        train_limit=settings["train_limit"],
        final=True,
    )
    again = task.score(model, task.load_data(ctx), "test")
    assert again["test_loss"] == record["configs"][0]["metrics"]["test_loss"][0]


def test_the_best_trial_written_as_a_space_file_reruns_to_the_same_value(
    searched, tmp_path, capsys
):
    storage = f"sqlite:///{searched}"
    study = only_study(storage)
    capsys.readouterr()
    assert best.main(["--storage", storage, "--study-name", study.study_name]) == 0
    (tmp_path / "best.toml").write_text(capsys.readouterr().out)
    rerun_url = f"sqlite:///{tmp_path}/best.db"
    rerun = ["--sampler", "grid", "--space", str(tmp_path / "best.toml"), "--workers", "1"]
    assert run_main(task_run(rerun_url, *rerun)) == 0  # no caps given: the file holds them
    (trial,) = only_study(rerun_url).trials
    measured = min(study.trials, key=lambda t: (t.value, t.number))
    assert trial.state.name == "COMPLETE"
    assert trial.params == {**measured.params, "epochs": 2}  # as it ran: --max-epochs 2
    assert trial.values == measured.values


def test_the_report_names_the_tasks_metrics_and_draws_its_learning_curves(searched, tmp_path):
    storage = f"sqlite:///{searched}"
    study = only_study(storage)
    out = tmp_path / "rep"
    argv = ["--study-name", study.study_name, "--storage", storage, "--out", str(out)]
    assert report.main(argv) == 0
    rows = list(csv.DictReader((out / "summary.csv").read_text().splitlines()))
    assert len(rows) == 4 and {"val_loss", "val_acc"} <= set(rows[0])
    assert [float(r["val_loss"]) for r in rows] == [t.value for t in study.trials]
    index = (out / "index.html").read_text()
    trials_table = re.search(r"<table id='trials'>.*?</table>", index, re.S).group(0)
    best_table = re.search(r"<table id='best'>.*?</table>", index, re.S).group(0)
    for table in (trials_table, best_table):
        assert "val loss" in table and "val acc" in table
    assert METRIC in target_name(study)
    for key in CHART_TITLES:
        if "{target}" in CHART_TITLES[key] and (out / f"{key}.html").exists():
            title = html.escape(title_of(key, study))
            assert f"<title>{title}</title>" in (out / f"{key}.html").read_text()
    assert target_name(study) in (out / "history.html").read_text()  # its axis, by name
    assert (out / "intermediate.html").exists()  # the curves the task reported every epoch


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.read()


@contextlib.contextmanager
def serving(storage: str) -> Iterator[str]:
    """The dashboard on a port the system picks; yields its URL once it is listening."""
    cmd = [sys.executable, "-m", "search.dashboard", "--storage", storage, "--port", "0"]
    proc = launch.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # The address is printed once the socket is bound: an event, no polling.
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        first = proc.stdout.readline() if ready else "(nothing printed in 120 s)"
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", first)
        assert found and found.group(1) != "0", first
        yield found.group(0).rstrip("/")
    finally:
        # Killed, not terminated: a SIGTERM that lands while a request is still finishing is
        # swallowed by wsgiref's handler and the server serves on (reported, search/views/
        # dashboard.py); this test is about what the API shows.
        proc.kill()
        proc.communicate(timeout=30)


@pytest.mark.slow  # the dashboard takes seconds to start
def test_the_dashboard_shows_the_tasks_objective_and_each_trials_learning_curve(searched):
    storage = f"sqlite:///{searched}"
    study = only_study(storage)
    with serving(storage) as url:
        (summary,) = json.loads(_get(f"{url}/api/studies"))["study_summaries"]
        detail = json.loads(_get(f"{url}/api/studies/{summary['study_id']}"))
    assert detail["objective_names"] == [METRIC]  # the study's metric_names
    assert detail["has_intermediate_values"]
    curves = {t["number"]: t["intermediate_values"] for t in detail["trials"]}
    assert curves == {
        t.number: [{"step": r["epoch"], "value": r[METRIC]} for r in records.history(study, t)]
        for t in study.trials
    }
