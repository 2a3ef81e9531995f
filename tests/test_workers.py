"""Several workers on one study: seeded by their index, stopped together, their dead found.

Every grid point exactly once with four local workers, on SQLite and PostgreSQL, is
tests/test_task_service.py's; the claim race of six claimants, tests/test_queue.py's."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from search.run import main as run_main

from . import launch
from .helpers import (
    check_exactly_once,
    completed_points,
    executions,
    start_two_workers,
)


def test_a_workers_sampler_is_seeded_by_the_study_seed_plus_its_index_never_its_pid(
    tiny_root, tmp_path, monkeypatch
):
    from search.study.queue.identity import worker_id
    from search.study.running.workers import HostOptions, open_as_worker, spec_from_study
    from search.study.storage import settings as settings_module

    storage = f"sqlite:///{tmp_path}/s.db"
    create = ["--sampler", "random", "--seed", "7", "--val-size", "200", "--create-only"]
    assert run_main(["--data-dir", str(tiny_root), "--storage", storage, *create]) == 0
    study = optuna.load_study(study_name="mnist-default-random-v200", storage=storage)
    seeds = []
    real = settings_module.make_sampler
    monkeypatch.setattr(
        settings_module, "make_sampler", lambda name, seed: seeds.append(seed) or real(name, seed)
    )
    for index in (0, 3, None):  # a lone run, worker 3 of several, a worker given no index
        open_as_worker(spec_from_study(study, storage, HostOptions(index=index)))
    assert seeds == [7, 10, (7 + worker_id()) % 2**32]


@pytest.mark.slow
def test_a_late_worker_only_takes_unclaimed_points(tiny_root, tmp_path, capsys):
    storage = f"sqlite:///{tmp_path}/s.db"
    lift = ["--data-dir", str(tiny_root), "--val-size", "200", "--storage", storage]
    assert run_main([*lift, "--max-epochs", "1", "--workers", "1", "--n-trials", "6"]) == 0
    before = {
        t.number: t.datetime_complete
        for t in optuna.load_study(study_name="mnist-ofat-e1-v200", storage=storage).get_trials()
        if t.state.name == "COMPLETE"
    }
    assert len(before) == 6
    # The study's budget is 6 trials; lifting it (here without running any) lets workers on.
    assert run_main([*lift, "--max-epochs", "1", "--create-only"]) == 0
    assert "9 trials to run" in capsys.readouterr().out
    late = launch.run(
        [
            sys.executable,
            "-m",
            "search.worker",
            "--storage",
            storage,
            "--study-name",
            "mnist-ofat-e1-v200",
            "--data-dir",
            str(tiny_root),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert late.returncode == 0, late.stderr
    assert "worker ran 9 trials" in late.stdout
    trials = check_exactly_once(storage)
    assert all(trials[n].datetime_complete == when for n, when in before.items())
    late_pids = {t.user_attrs["worker"]["pid"] for t in trials if t.number not in before}
    assert len(late_pids) == 1 and late_pids.isdisjoint(
        trials[n].user_attrs["worker"]["pid"] for n in before
    )


def trials_of(storage: str, name: str = "mnist-ofat-e2-v200") -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=storage).get_trials()


@pytest.mark.slow
def test_a_killed_worker_leaves_no_trial_running_and_its_point_is_rerun(
    tiny_root, tmp_path, pause
):
    storage = f"sqlite:///{tmp_path}/s.db"
    mid_trial = pause(after_epochs=4)  # a worker with two trials done, in its third
    parent = start_two_workers(tiny_root, storage, env=mid_trial.env)
    victim = mid_trial.wait(parent)
    assert victim != parent.pid
    os.kill(victim, signal.SIGKILL)
    out, err = parent.communicate(timeout=600)
    assert parent.returncode == 0, err
    trials = trials_of(storage)
    (killed,) = [t for t in trials if t.state.name == "FAIL"]
    assert killed.user_attrs["worker"]["pid"] == victim
    assert "interrupted" in killed.user_attrs["fail_reason"]
    assert sum(t.user_attrs["worker"]["pid"] == victim for t in trials) == 3  # 2 done, 1 killed
    assert len(set(completed_points(trials))) == len(completed_points(trials)) == 15
    assert executions(optuna.load_study(study_name="mnist-ofat-e2-v200", storage=storage)) == 16
    assert not [t for t in trials if t.state.name in ("RUNNING", "WAITING")]


STOPS = {
    # A terminal's Ctrl-C reaches the whole group, parent and workers.
    "ctrl-c": (lambda parent: os.killpg(parent.pid, signal.SIGINT), 130),
    # docker stop and Kubernetes signal the parent alone; it passes the signal on.
    "sigterm": (lambda parent: parent.send_signal(signal.SIGTERM), 143),
}


@pytest.mark.slow
@pytest.mark.parametrize("stop", STOPS)
def test_a_stop_ends_every_worker_and_the_next_run_reruns_their_trials(
    stop, tiny_root, tmp_path, pause
):
    storage = f"sqlite:///{tmp_path}/s.db"
    mid_trial = pause(after_epochs=4)
    parent = start_two_workers(tiny_root, storage, env=mid_trial.env)
    paused = mid_trial.wait(parent)
    send, code = STOPS[stop]
    send(parent)
    out, err = parent.communicate(timeout=120)
    assert parent.returncode == code and "Traceback" not in err, err
    trials = trials_of(storage)
    assert "RUNNING" not in [t.state.name for t in trials]
    interrupted = [t for t in trials if t.user_attrs.get("fail_reason") == "interrupted"]
    assert paused in [t.user_attrs["worker"]["pid"] for t in interrupted]
    rerun = ["--data-dir", str(tiny_root), "--storage", storage, "--val-size", "200"]
    assert run_main([*rerun, "--quiet", "--max-epochs", "2", "--workers", "1"]) == 0
    trials = trials_of(storage)
    assert len(completed_points(trials)) == len(set(completed_points(trials))) == 15
    study = optuna.load_study(study_name="mnist-ofat-e2-v200", storage=storage)
    assert executions(study) == len(trials)  # each trial ran once; failed ones were rerun


@pytest.mark.slow
def test_sigterm_stops_a_lone_worker_with_143_and_its_trial_is_rerun(tiny_root, tmp_path, pause):
    from search import worker

    storage = f"sqlite:///{tmp_path}/s.db"
    data = ["--data-dir", str(tiny_root), "--storage", storage]
    create = ["--val-size", "200", "--max-epochs", "2", "--create-only", "--quiet"]
    assert run_main([*data, *create]) == 0
    mid_trial = pause(after_epochs=1)
    join = [*data, "--study-name", "mnist-ofat-e2-v200", "--quiet"]
    lone = mid_trial.start("search.worker", *join)
    assert mid_trial.wait(lone) == lone.pid
    lone.send_signal(signal.SIGTERM)
    out, err = lone.communicate(timeout=120)
    assert lone.returncode == 143 and "Traceback" not in err, err
    (failed,) = [t for t in trials_of(storage) if t.state.name != "WAITING"]
    assert failed.state.name == "FAIL" and failed.user_attrs["fail_reason"] == "interrupted"
    assert worker.main(join) == 0
    trials = trials_of(storage)
    assert len(completed_points(trials)) == len(set(completed_points(trials))) == 15


BROKEN_STORAGE = """
import os
import sqlalchemy.exc
import search.study.running.runner as _runner

_claim, _marker = _runner.claim_waiting, os.environ["SEARCH_TEST_BREAK"]


def claim_waiting(study):
    try:  # the first process to get here loses its database; the others carry on
        os.close(os.open(_marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return _claim(study)
    raise sqlalchemy.exc.OperationalError("UPDATE trials", {}, Exception("disk I/O error"))


_runner.claim_waiting = claim_waiting
"""


@pytest.mark.slow
def test_a_worker_that_dies_makes_the_run_fail_with_one_line_naming_it(tiny_root, tmp_path):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(BROKEN_STORAGE)
    env = {**os.environ, "PYTHONPATH": str(hook), "SEARCH_TEST_BREAK": str(tmp_path / "broken")}
    storage = f"sqlite:///{tmp_path}/s.db"
    done = start_two_workers(tiny_root, storage, env=env)
    out, err = done.communicate(timeout=600)
    assert done.returncode == 1 and "Traceback" not in err, err
    (died,) = [line for line in err.splitlines() if "OperationalError" in line]
    assert re.fullmatch(r"\[worker [01]\] error: OperationalError: .*disk I/O error.*", died)
    assert "error: a worker exited with code 1" in err
    trials = trials_of(storage)  # the other worker finished the study
    assert len(completed_points(trials)) == len(set(completed_points(trials))) == 15


def test_a_worker_joining_from_elsewhere_stops_at_the_studys_budget(tiny_root, tmp_path, capsys):
    from search import worker

    storage = f"sqlite:///{tmp_path}/s.db"
    data = ["--data-dir", str(tiny_root), "--val-size", "200", "--storage", storage, "--quiet"]
    sampler = ["--sampler", "random", "--n-trials", "2", "--max-epochs", "1", "--create-only"]
    assert run_main([*data, *sampler]) == 0
    name = ["--study-name", "mnist-default-random-e1-v200"]
    assert worker.main([*data[:2], "--storage", storage, *name, "--quiet"]) == 0
    assert "worker ran 2 trials" in capsys.readouterr().out
    trials = optuna.load_study(study_name=name[1], storage=storage).get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 2
    assert worker.main([*data[:2], "--storage", storage, *name, "--quiet"]) == 0
    assert "worker ran 0 trials" in capsys.readouterr().out


def _say_who(queue, env: dict[str, str]) -> None:
    """A forked worker's first steps: take the parent's environment, then say who it is."""
    from search.study.queue.identity import worker_id
    from search.study.running.pool import adopt_environment

    adopt_environment(env)
    queue.put((worker_id(), os.environ.get("SEARCH_TEST_SET_LATE")))


def test_forked_workers_draw_worker_ids_of_their_own_and_take_the_parents_environment(
    monkeypatch,
):
    from search.study.queue.identity import worker_id
    from search.study.running.pool import worker_context

    ctx = worker_context()
    first = ctx.Process(target=os.getpid)  # the fork server runs from here on
    first.start()
    first.join()
    queue = ctx.SimpleQueue()
    monkeypatch.setenv("SEARCH_TEST_SET_LATE", "seen")  # after the fork server started
    procs = [ctx.Process(target=_say_who, args=(queue, dict(os.environ))) for _ in range(2)]
    for p in procs:
        p.start()
    said = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    ids = [i for i, _ in said]
    assert len({worker_id(), *ids}) == 3  # the parent's and each worker's own
    assert [env for _, env in said] == ["seen", "seen"]


def test_whole_studies_on_the_cpu_use_a_worker_per_core_by_default():
    from search.study.running.pool import default_workers

    cores = os.cpu_count() or 1
    assert default_workers("cpu", cores + 1) == cores
    assert default_workers("cpu", cores) == 1  # no more trials than cores: one process
    assert default_workers("cuda", 100) == 1


@pytest.mark.slow
def test_a_run_without_workers_given_spreads_a_study_over_the_cores(tiny_root, tmp_path, capsys):
    cores = os.cpu_count() or 1
    space = tmp_path / "widths.toml"
    space.write_text(f'name = "w"\n[params]\nlayers = 1\nunits = {list(range(2, cores + 4))}\n')
    argv = ["--data-dir", str(tiny_root), "--val-size", "200", "--max-epochs", "1"]
    db = f"sqlite:///{tmp_path}/s.db"
    assert run_main([*argv, "--space", str(space), "--storage", db]) == 0
    said = capsys.readouterr().err
    assert (f"with {cores} workers" in said) == (cores > 1), said
    trials = optuna.load_study(study_name="mnist-w-e1-v200", storage=db).get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * (cores + 2)
    assert os.getpid() not in {t.user_attrs["worker"]["pid"] for t in trials} or cores == 1


SWALLOWED = """
import os
import signal
from search import signals

signals.listening()


class Doomed:
    def __del__(self):  # the signal lands here; a handler that raised would be ignored here
        os.kill(os.getpid(), signal.{name})


Doomed()
print("went on")
try:
    signals.stop_point()  # where the run checks: between batches, trials and in waits
    print("never stopped")
except KeyboardInterrupt as e:
    print("stopped:", type(e).__name__)
"""


@pytest.mark.parametrize(
    ("name", "raised"), [("SIGTERM", "Terminated"), ("SIGINT", "KeyboardInterrupt")]
)
def test_a_stop_signal_that_lands_in_a_destructor_stops_the_run_at_its_next_safe_point(
    name, raised
):
    done = subprocess.run(
        [sys.executable, "-c", SWALLOWED.format(name=name)], capture_output=True, text=True
    )
    assert done.stdout == f"went on\nstopped: {raised}\n", done.stdout + done.stderr
    assert done.stderr == ""  # no "Exception ignored ... Traceback": the handler raised nothing


def first_suggestion(tiny_root: Path, db: Path, index: int | None) -> dict:
    """The first point a worker of that index suggests on a fresh random-search study."""
    from search.study.running.workers import HostOptions, open_as_worker, spec_from_study

    argv = ["--data-dir", str(tiny_root), "--storage", f"sqlite:///{db}", "--val-size", "200"]
    argv += ["--sampler", "random", "--study-name", "s", "--create-only", "--quiet"]
    assert run_main(argv) == 0
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{db}")
    spec = spec_from_study(study, f"sqlite:///{db}", HostOptions(index=index))
    return spec.space.suggest(open_as_worker(spec).ask())


def test_a_workers_sampler_is_seeded_by_its_index_so_a_run_can_be_reproduced(tiny_root, tmp_path):
    first = {(k, run): first_suggestion(tiny_root, tmp_path / f"{k}-{run}.db", k)
             for k in (0, 1) for run in ("a", "b")}  # fmt: skip
    assert first[0, "a"] == first[0, "b"] and first[1, "a"] == first[1, "b"]
    assert first[0, "a"] != first[1, "a"]  # worker 1 is seeded apart from worker 0
    without = [first_suggestion(tiny_root, tmp_path / f"none-{n}.db", None) for n in (1, 2)]
    assert without[0] != first[0, "a"]  # no index: a seed of its own, not the study's
