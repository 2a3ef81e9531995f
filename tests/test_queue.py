"""The grid's queue: a short window of WAITING trials, topped up until every point has run."""

from __future__ import annotations

import os
import signal
from collections import Counter
from multiprocessing.synchronize import Event

import optuna
import pytest
from optuna.trial import TrialState

from search import signals
from search.errors import Terminated
from search.study.queue import claims
from search.study.running import budget, runner
from search.study.running.budget import RunnerConfig
from search.study.running.pool import worker_context
from search.study.running.runner import Outcome
from search.study.space.space import point_key
from search.study.space.spacefile import design, parse_space
from search.study.storage.storage import open_storage, records


def finish_at_once(trial: optuna.Trial) -> Outcome:
    """An objective that trains nothing: the queue's behaviour, without the training."""
    return Outcome(TrialState.COMPLETE, [0.5])


@pytest.fixture
def ofat_study(tmp_path):
    study = optuna.create_study(
        storage=open_storage(f"sqlite:///{tmp_path}/q.db"), direction="maximize"
    )
    return study, design("ofat").as_grid("test")


def test_the_queue_holds_at_most_its_window_of_waiting_points(ofat_study):
    study, space = ofat_study
    assert claims.enqueue_missing(study, space, max_retries=2, window=4) == 4
    assert claims.enqueue_missing(study, space, max_retries=2, window=4) == 0
    assert len(study.get_trials(states=(TrialState.WAITING,))) == 4


def test_a_grid_larger_than_the_window_runs_every_point_exactly_once(ofat_study):
    study, space = ofat_study
    cfg = RunnerConfig(queue_window=4)
    claims.enqueue_missing(study, space, cfg.max_retries, cfg.queue_window)
    assert runner.run(study, space, finish_at_once, cfg) == 15
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 15
    assert Counter(t.user_attrs["point"] for t in trials) == Counter(
        point_key(p) for p in space.points
    )


def test_progress_counts_the_points_not_yet_queued(ofat_study):
    study, space = ofat_study
    cfg = RunnerConfig(queue_window=4)
    claims.enqueue_missing(study, space, cfg.max_retries, cfg.queue_window)
    assert budget.planned(study, space, cfg) == (15, 15)


UNITS = ", ".join(map(str, range(1, 101)))
POINTS_300 = f"[params]\nunits = [{UNITS}]\nbatch_size = [64, 128, 256]\n"  # 100 x 3


def _run_all(url: str, name: str, start: Event) -> int:
    """A worker that claims and finishes trials at once (the runner's own loop, topping up the
    queue), until every point has run; returns how many it ran."""
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    space = parse_space(POINTS_300, "test").as_grid("test")
    start.wait()
    return runner.run(study, space, finish_at_once, RunnerConfig(max_retries=0))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_six_claimants_starting_together_never_take_one_of_300_points_twice(
    kind, tmp_path, request
):
    url = (
        f"sqlite:///{tmp_path}/race.db" if kind == "sqlite" else request.getfixturevalue("pg_url")
    )
    study = optuna.create_study(storage=open_storage(url), direction="maximize")
    space = parse_space(POINTS_300, "test").as_grid("test")
    claims.enqueue_missing(study, space, max_retries=0, window=claims.QUEUE_WINDOW)
    ctx = worker_context()  # the run's own: forked from a server that imported it all once
    with ctx.Manager() as manager, ctx.Pool(6) as pool:
        start = manager.Event()
        runs = [pool.apply_async(_run_all, (url, study.study_name, start)) for _ in range(6)]
        start.set()  # all six claim at the same moment: what --workers N does at its start
        ran = [r.get(timeout=300) for r in runs]  # a claimant that raised raises here
    trials = study.get_trials()
    assert sum(ran) == len(trials) == 300
    assert [len(records.claims_of(study, t)) for t in trials] == [1] * 300
    assert len({t.user_attrs["point"] for t in trials}) == 300
    assert {t.state for t in trials} == {TrialState.COMPLETE}


QUEUED = 120  # without the claim's lock, two workers took one in 5 runs of 5 (trials 3 to 112)


def _run_queued(url: str, name: str, start: Event) -> int:
    """A sampler study's worker, as _run_all, until the study's budget of QUEUED is spent."""
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    start.wait()
    space = parse_space(POINTS_300, "test")
    return runner.run(study, space, finish_at_once, RunnerConfig(n_trials=QUEUED))


@pytest.mark.slow
def test_six_workers_of_a_sampler_study_never_take_one_of_its_queued_trials_twice(tmp_path):
    """Queued trials of a sampler's study (requeued after a stop, or a warm start) are claimed
    as a grid's points are. On SQLite, Optuna's own pop (``study.ask``) lets two take one."""
    url = f"sqlite:///{tmp_path}/race.db"
    study = optuna.create_study(storage=open_storage(url), direction="maximize")
    for point in parse_space(POINTS_300, "test").as_grid("test").points[:QUEUED]:
        study.enqueue_trial(point)
    ctx = worker_context()
    with ctx.Manager() as manager, ctx.Pool(6) as pool:
        start = manager.Event()
        runs = [pool.apply_async(_run_queued, (url, study.study_name, start)) for _ in range(6)]
        start.set()
        ran = [r.get(timeout=300) for r in runs]  # a worker that raised raises here
    trials = study.get_trials()
    assert sum(ran) == len(trials) >= QUEUED  # a few new ones as the budget runs out: allowed
    assert [len(records.claims_of(study, t)) for t in trials] == [1] * len(trials)
    assert {t.state for t in trials} == {TrialState.COMPLETE}


@pytest.mark.parametrize("space_kind", ["grid", "sampler"])
def test_a_stop_during_a_claim_fails_the_claimed_trial_as_interrupted_before_it_runs(
    space_kind, ofat_study, monkeypatch
):
    study, space = ofat_study
    if space_kind == "sampler":
        space = parse_space(POINTS_300, "test")
    add = records.add

    def add_with_a_stop(study, trial, kind, value):
        if kind == records.CLAIM:
            os.kill(os.getpid(), signal.SIGTERM)  # lands while the claim is half made
        add(study, trial, kind, value)

    monkeypatch.setattr(records, "add", add_with_a_stop)
    replaced = signals.listening()
    try:
        with pytest.raises(Terminated):
            runner.run(study, space, finish_at_once, RunnerConfig(max_retries=0))
    finally:
        signals.restore(replaced)
    claimed = study.get_trials(states=(TrialState.RUNNING, TrialState.FAIL, TrialState.COMPLETE))
    assert [t.state for t in claimed] == [TrialState.FAIL]
    assert records.interrupted(claimed[0])
    assert len(records.claims_of(study, claimed[0])) == 1  # the claim was made whole


def test_a_trial_failed_as_stale_that_finishes_keeps_its_result(ofat_study):
    from search.study.storage.internals import rdb, trial_id

    study, space = ofat_study
    claims.enqueue_missing(study, space, max_retries=2, window=2)
    trial = claims.claim_waiting(study)

    def late(t: optuna.Trial) -> Outcome:
        # Another worker's verdict, written as search.study.queue.recovery writes it.
        storage, failed = rdb(study), trial_id(t)
        reason = "interrupted: no heartbeat"
        for key, value in records.failure(records.FailKind.INTERRUPTED, reason).items():
            storage.set_trial_user_attr(failed, key, value)
        storage.set_trial_state_values(failed, TrialState.FAIL)
        return Outcome(TrialState.COMPLETE, [0.9])

    kept = runner.run_trial(study, trial, late)
    original = study.get_trials()[trial.number]
    assert original.state == TrialState.FAIL and kept.state == TrialState.COMPLETE
    assert kept.value == 0.9 and kept.params == original.params
    assert kept.user_attrs["point"] == original.user_attrs["point"]
    assert kept.user_attrs["reason"].startswith("kept: finished after it was failed as stale")
    assert (
        len(records.claims_of(study, original)) == 1 and records.claims_of(study, kept) == []
    )  # one run
