"""Workers on a SLURM cluster (``python -m search.submit slurm``), for real on one node.

The cluster is this machine's (``deploy/slurm/local-cluster.sh``, started here when running as
root with SLURM installed and the cluster down), the study lives in a PostgreSQL database of
this module's own (``SEARCH_TEST_POSTGRES_URL``), and the grid is the real MNIST's ofat at 1
epoch on 2,000 images. Under ``CI=true`` a missing cluster or database fails instead of
skipping. The tests wait on events: a trial pausing (tests/pausing.py) and SLURM's queue
emptying (polled, with a deadline), never on a fixed sleep.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest

from search.run import main as run_main
from search.study.running.slurm import SlurmJob, render
from search.study.storage import records

from . import launch
from .helpers import GRID_OPTIONS, GRID_STUDY, GRID_TASKS, completed_points, submit_argv

ROOT = Path(__file__).resolve().parent.parent
PG = os.environ.get("SEARCH_TEST_POSTGRES_URL")
QUEUE_WAIT_S = 300  # a 4-task array here takes well under a minute; this bounds a broken test
SECRET = "s3cret-in-the-url"
SUBMITTED: list[str] = []  # every job array this module submitted, cancelled at its end


def unavailable(reason: str) -> None:
    if os.environ.get("CI"):  # CI provides SLURM and PostgreSQL: never skip silently there
        pytest.fail(f"CI is set but {reason}")
    pytest.skip(reason)


def slurm(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def cluster_idle() -> bool:
    done = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=120)
    return done.returncode == 0 and bool({"idle", "mix", "alloc"} & set(done.stdout.split()))


@pytest.fixture(scope="session")
def cluster() -> None:
    """A SLURM cluster that takes jobs: this machine's, started if it is down and we may."""
    if shutil.which("sbatch") is None:
        unavailable("sbatch is not installed (apt-get install slurm-wlm munge)")
    if cluster_idle():
        return
    if os.geteuid() != 0:
        unavailable("SLURM is down: as root, bash deploy/slurm/local-cluster.sh start")
    script = ROOT / "deploy" / "slurm" / "local-cluster.sh"
    started = subprocess.run(["bash", script, "start"], capture_output=True, text=True)
    assert started.returncode == 0, started.stdout + started.stderr


@pytest.fixture(scope="module")
def storage() -> str:
    """A fresh PostgreSQL database of this module's own, dropped afterwards."""
    if not PG:
        unavailable("SEARCH_TEST_POSTGRES_URL is unset (e.g. postgresql+psycopg://postgres@...)")
    import sqlalchemy

    name = f"search_slurm_{uuid.uuid4().hex[:10]}"
    admin = sqlalchemy.create_engine(PG, isolation_level="AUTOCOMMIT")
    with admin.connect() as con:
        con.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield sqlalchemy.engine.make_url(PG).set(database=name).render_as_string(hide_password=False)
    if SUBMITTED:  # a failed test may leave tasks running: none may outlive their database
        subprocess.run(["scancel", *SUBMITTED], capture_output=True, timeout=60)
        for job in SUBMITTED:
            wait_for(job, within=120, records=False)
    with admin.connect() as con:
        con.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def submit(*argv: str, env: dict | None = None, cwd: Path | None = None):
    return launch.run(
        [sys.executable, "-m", "search.submit", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def create_grid(storage: str, data: Path, name: str) -> None:
    argv = [*GRID_OPTIONS, "--quiet"]
    where = ["--data-dir", str(data), "--storage", storage, "--study-name", name]
    assert run_main([*argv, *where, "--create-only"]) == 0


def queued(job: str) -> bool:
    done = subprocess.run(["squeue", "-h", "-j", job], capture_output=True, text=True)
    return done.returncode == 0 and bool(done.stdout.strip())


def wait_for(
    job: str, within: float = QUEUE_WAIT_S, records: bool = True
) -> dict[str, dict[str, str]]:
    """Poll until a job array (or one task, JOB_TASK) has left SLURM's queue; each task's
    record, by task id."""
    deadline = time.monotonic() + within
    while queued(job):
        assert time.monotonic() < deadline, f"job {job} still queued after {within} s"
        time.sleep(0.2)
    if not records:
        return {}
    records = [
        dict(field.split("=", 1) for field in line.split() if "=" in field)
        for line in slurm("scontrol", "show", "job", "-o", job).splitlines()
    ]
    return {r["ArrayTaskId"]: r for r in records}


def start_array(storage: str, study: str, tasks: int, folder: Path, env: dict | None = None):
    """Submit ``tasks`` workers, 2 at a time, from ``folder``; the job array's id."""
    folder.mkdir(parents=True, exist_ok=True)
    argv = submit_argv(study, tasks)
    done = submit(*argv, env={**(env or {}), "SEARCH_STORAGE": storage}, cwd=folder)
    assert done.returncode == 0, done.stderr
    (job,) = re.findall(r"submitted job array (\d+)", done.stdout)
    SUBMITTED.append(job)
    assert str(logs_of(folder)) in done.stdout  # the line says where the logs go
    return job


def logs_of(folder: Path) -> Path:
    """Where the tasks' logs go for a PostgreSQL study submitted from ``folder``: slurm/ in
    the artifact folder its workers use there."""
    return folder / "study_db" / "artifacts" / "slurm"


def outputs(folder: Path) -> str:
    """The logs of the arrays submitted from ``folder``, after checking none is left there."""
    assert not list(folder.glob("slurm-*.out"))
    return "".join(p.read_text() for p in sorted(logs_of(folder).glob("slurm-*.out")))


@pytest.fixture(scope="module")
def finished_grid(cluster, storage, real_root, tmp_path_factory):
    """The grid, run by a 4-task array (2 at a time), with sbatch's command line recorded."""
    create_grid(storage, real_root, GRID_STUDY)
    folder = tmp_path_factory.mktemp("slurm-grid")
    shim = folder / "bin"
    shim.mkdir()  # an sbatch that notes its arguments, then is the real one
    real = shutil.which("sbatch")
    (shim / "sbatch").write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$@" > {folder}/sbatch-argv\nexec {real} "$@"\n'
    )
    (shim / "sbatch").chmod(0o755)
    path = f"{shim}{os.pathsep}{os.environ['PATH']}"
    job = start_array(storage, GRID_STUDY, GRID_TASKS, folder, env={"PATH": path})
    return job, wait_for(job), folder


def test_a_dry_run_prints_a_script_with_the_array_and_no_storage_url(tmp_path):
    url = f"postgresql+psycopg://search:{SECRET}@db.example.test/search"
    argv = ["slurm", "--study-name", "s", "--tasks", "8", "--parallel", "3", "--dry-run"]
    done = submit(*argv, env={"SEARCH_STORAGE": url})
    assert done.returncode == 0, done.stderr
    assert "#SBATCH --array=0-7%3\n" in done.stdout and "--gpus-per-task=1" in done.stdout
    assert f"exec {sys.executable} -m search.worker" in done.stdout
    assert SECRET not in done.stdout + done.stderr and "db.example.test" not in done.stdout
    (tmp_path / "job.sh").write_text(done.stdout)
    checked = subprocess.run(["bash", "-n", tmp_path / "job.sh"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def test_the_deploy_script_is_the_default_rendering():
    assert (ROOT / "deploy" / "slurm" / "worker.sbatch").read_text() == render(SlurmJob())


@pytest.mark.parametrize(
    ("argv", "env", "code", "said"),
    [
        (["kubernetes", "--study-name", "s", "--tasks", "2"], {}, 2, "invalid choice"),
        (["slurm", "--study-name", "s", "--tasks", "2"], {"SEARCH_STORAGE": ""}, 2, "storage"),
        (
            ["slurm", "--study-name", "s", "--tasks", "2", "--time", "2 hours", "--dry-run"],
            {},
            2,
            "--time: '2 hours' is not a SLURM time",
        ),
        (
            ["slurm", "--study-name", "s", "--tasks", "2"],
            {"SEARCH_STORAGE": "sqlite:///never.db", "PATH": "/nonexistent"},
            1,
            "sbatch not found",
        ),
    ],
    ids=["unknown engine", "no storage", "bad time", "no sbatch"],
)
def test_a_refused_submission_is_one_line_and_its_exit_code(argv, env, code, said, tmp_path):
    done = submit(*argv, env=env, cwd=tmp_path)
    assert done.returncode == code and said in done.stderr, done.stderr
    assert len(done.stderr.splitlines()) == 1 and not done.stdout
    assert not list(tmp_path.iterdir())  # nothing made, no database either


def test_a_missing_study_is_one_line_that_says_how_to_make_it(cluster, storage, tmp_path):
    argv = ["slurm", "--study-name", "nowhere", "--tasks", "2", "--storage", storage]
    done = submit(*argv, cwd=tmp_path)
    assert done.returncode == 1 and not done.stdout, done.stderr
    (line,) = done.stderr.splitlines()
    assert "no study 'nowhere'" in line and "python -m search.run --study-name nowhere" in line


def test_a_controller_that_does_not_answer_is_one_line_and_exit_1(cluster, storage, tmp_path):
    optuna.create_study(study_name="unsubmitted", storage=storage)
    dead = tmp_path / "dead.conf"  # a port nothing listens on, and a short timeout
    dead.write_text(
        "ClusterName=dead\nSlurmctldHost=localhost\nSlurmctldPort=9\nMessageTimeout=2\n"
    )
    argv = ["slurm", "--study-name", "unsubmitted", "--tasks", "2"]
    done = submit(*argv, env={"SEARCH_STORAGE": storage, "SLURM_CONF": str(dead)}, cwd=tmp_path)
    assert done.returncode == 1 and not done.stdout, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: sbatch failed:") and "controller" in line


@pytest.mark.slow
def test_a_four_task_array_completes_each_grid_point_exactly_once(finished_grid, storage):
    job, tasks, folder = finished_grid
    assert [(t["JobState"], t["ExitCode"]) for t in tasks.values()] == [("COMPLETED", "0:0")] * 4
    assert "Traceback" not in outputs(folder)
    study = optuna.load_study(study_name="grid", storage=storage)
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 15
    assert len(set(completed_points(trials))) == 15
    assert [len(records.claims_of(study, t)) for t in trials] == [1] * 15


@pytest.mark.slow
def test_the_storage_url_reaches_the_tasks_only_through_their_environment(finished_grid, storage):
    job, _, folder = finished_grid
    database = storage.rsplit("/", 1)[1]  # a name of its own: found only where the URL went
    seen = {
        "sbatch's command line": (folder / "sbatch-argv").read_text(),
        "the batch script": slurm("scontrol", "write", "batch_script", job, "-"),
        "the job's record": slurm("scontrol", "show", "job", "-o", job),
    }
    assert "--array=0-3%2" in seen["sbatch's command line"]
    assert [where for where, text in seen.items() if database in text] == []


@pytest.mark.slow
def test_a_task_on_a_finished_study_exits_0_at_once(finished_grid, storage, tmp_path):
    job = start_array(storage, "grid", 1, tmp_path)
    (task,) = wait_for(job, within=60).values()  # measured here: 3 s, most of it imports
    assert (task["JobState"], task["ExitCode"]) == ("COMPLETED", "0:0")
    assert "worker ran 0 trials of grid" in outputs(tmp_path)  # in the folder it named
    assert len(optuna.load_study(study_name="grid", storage=storage).get_trials()) == 15


class Queued:
    """Stands in for a process in ``Pause.wait``: it runs while the array is queued."""

    def __init__(self, job: str) -> None:
        self.job, self.returncode = job, None

    def poll(self) -> int | None:
        self.returncode = None if queued(self.job) else 0
        return self.returncode

    def communicate(self) -> tuple[str, str]:
        return "", f"job array {self.job} left the queue"


@pytest.mark.slow
def test_scancel_sigterm_mid_trial_fails_it_as_interrupted_and_another_task_reruns_it(
    cluster, storage, real_root, tmp_path, pause
):
    create_grid(storage, real_root, "stopped")
    mid_trial = pause(after_epochs=1)  # the first task to start its second trial waits in it
    job = start_array(storage, "stopped", 2, tmp_path, env=mid_trial.env)
    victim = mid_trial.wait(Queued(job))
    environ = dict(
        line.split("=", 1)
        for line in Path(f"/proc/{victim}/environ").read_text().split("\0")
        if "=" in line
    )
    task = f"{environ['SLURM_ARRAY_JOB_ID']}_{environ['SLURM_ARRAY_TASK_ID']}"
    slurm("scancel", "--signal=TERM", "--batch", task)
    (ended,) = wait_for(task).values()
    assert ended["ExitCode"] == "143:0"  # the worker's own exit status, not the shell's death
    assert not Path(f"/proc/{victim}").exists()  # no worker outlives its task
    tasks = wait_for(job)
    assert sorted(t["ExitCode"] for t in tasks.values()) == ["0:0", "143:0"]
    study = optuna.load_study(study_name="stopped", storage=storage)
    trials = study.get_trials()
    (stopped,) = [t for t in trials if t.state.name == "FAIL"]
    assert stopped.user_attrs["fail_reason"] == "interrupted"
    assert [c["pid"] for c in records.claims_of(study, stopped)] == [victim]
    done = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(done) == len(set(completed_points(done))) == 15 == len(trials) - 1
    assert [len(records.claims_of(study, t)) for t in done] == [1] * 15
    assert stopped.user_attrs["point"] in completed_points(done)  # rerun by the other task


def fake_sbatch(folder: Path) -> str:
    """A PATH whose sbatch notes its arguments and answers job 123, as --parsable does."""
    shim = folder / "bin"
    shim.mkdir()
    (shim / "sbatch").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {folder}/argv\necho 123\n')
    (shim / "sbatch").chmod(0o755)
    return f"{shim}{os.pathsep}{os.environ['PATH']}"


def test_a_missing_study_is_made_from_the_run_options_after_two_dashes(tiny_root, tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    run = ["--sampler", "grid", "--max-epochs", "1", "--val-size", "200"]
    env = {"PATH": fake_sbatch(tmp_path), "SEARCH_STORAGE": url}
    argv = ["slurm", "--study-name", "made", "--tasks", "2", "--", *run]
    done = submit(*argv, "--data-dir", str(tiny_root), env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "submitted job array 123" in done.stdout
    trials = optuna.load_study(study_name="made", storage=url).trials
    assert len(trials) == 15 and {t.state.name for t in trials} == {"WAITING"}
    assert str(tmp_path / "s.db") not in (tmp_path / "argv").read_text()  # env only
    logs = tmp_path / "artifacts" / "slurm"  # beside the study's artifacts, made for SLURM
    assert logs.is_dir() and str(logs) in done.stdout


def test_run_options_search_run_refuses_are_its_one_line_and_exit_code(tiny_root, tmp_path):
    env = {"PATH": fake_sbatch(tmp_path), "SEARCH_STORAGE": f"sqlite:///{tmp_path}/s.db"}
    argv = ["slurm", "--study-name", "made", "--tasks", "2", "--", "--seed", "-1"]
    done = submit(*argv, env=env, cwd=tmp_path)
    assert done.returncode == 2 and not done.stdout
    (line,) = done.stderr.splitlines()
    assert "--seed" in line and not (tmp_path / "s.db").exists()


def test_the_tasks_logs_go_to_the_log_dir_made_before_submitting(tmp_path):
    env = {"PATH": fake_sbatch(tmp_path), "SEARCH_STORAGE": f"sqlite:///{tmp_path}/s.db"}
    optuna.create_study(study_name="s", storage=env["SEARCH_STORAGE"])
    logs = tmp_path / "logs" / "deeper"
    argv = ["slurm", "--study-name", "s", "--tasks", "2", "--log-dir", str(logs)]
    done = submit(*argv, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert logs.is_dir() and str(logs) in done.stdout
    assert f"--output={logs}/slurm-%A_%a.out" in (tmp_path / "argv").read_text().splitlines()


def test_a_log_dir_that_cannot_be_made_is_one_line_and_nothing_is_made(tiny_root, tmp_path):
    (tmp_path / "a-file").write_text("")
    env = {"PATH": fake_sbatch(tmp_path), "SEARCH_STORAGE": f"sqlite:///{tmp_path}/s.db"}
    logs = tmp_path / "a-file" / "logs"
    argv = ["slurm", "--study-name", "made", "--tasks", "2", "--log-dir", str(logs)]
    done = submit(*argv, "--", "--data-dir", str(tiny_root), env=env, cwd=tmp_path)
    assert done.returncode == 1 and not done.stdout and "Traceback" not in done.stderr
    (line,) = done.stderr.splitlines()
    assert "--log-dir" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "bin"]  # no database
