"""The grid's queue: a short window of WAITING trials, topped up until every point has run."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from multiprocessing.synchronize import Event

import optuna
import pytest
from optuna.trial import TrialState

from search.study import claims, runner
from search.study.runner import Outcome
from search.study.space import design, point_key
from search.study.storage import open_storage


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
    cfg = runner.RunnerConfig(queue_window=4)
    claims.enqueue_missing(study, space, cfg.max_retries, cfg.queue_window)
    assert runner.run(study, space, finish_at_once, cfg) == 15
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 15
    assert Counter(t.user_attrs["point"] for t in trials) == Counter(
        point_key(p) for p in space.points
    )


def test_progress_counts_the_points_not_yet_queued(ofat_study):
    study, space = ofat_study
    cfg = runner.RunnerConfig(queue_window=4)
    claims.enqueue_missing(study, space, cfg.max_retries, cfg.queue_window)
    assert runner.planned(study, space, cfg) == (15, 15)


def _claim_all(url: str, name: str, start: Event) -> int:
    """A worker that claims and finishes trials at once, until the queue is empty."""
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    start.wait()
    ran = 0
    while (trial := claims.claim_waiting(study)) is not None:
        study.tell(trial, 0.5)
        ran += 1
    return ran


def test_claimants_starting_together_on_sqlite_never_take_one_point_twice(tmp_path):
    url = f"sqlite:///{tmp_path}/race.db"
    study = optuna.create_study(storage=open_storage(url), direction="maximize")
    space = design("full").as_grid("test")
    claims.enqueue_missing(study, space, max_retries=0, window=60)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(4) as pool:
        start = manager.Event()
        runs = [pool.apply_async(_claim_all, (url, study.study_name, start)) for _ in range(4)]
        start.set()  # all four claim at the same moment: what --workers N does at its start
        ran = [r.get(timeout=300) for r in runs]
    trials = study.get_trials()
    assert sum(ran) == len(trials) == 60
    assert [len(claims.claims_of(t)) for t in trials] == [1] * 60
    assert {t.state for t in trials} == {TrialState.COMPLETE}
