"""The grid's queue and the claims on it: how a worker takes a trial that no other one takes.

The missing grid points are queued as WAITING trials under the study's lock, a short window
at a time, and a worker claims one with the storage's WAITING -> RUNNING update, which
succeeds for one claimant only; a sampler's study claims its queued trials (requeued after a
stop, or a warm start) the same way, and a new trial by ``ask``. A stop is held back while a
claim is half made (``search.signals.deferred``), so a trial is never left claimed without an
owner; the runner then fails it as interrupted.

Every claim is recorded in the trial's records (``search.study.storage.records``: the worker, when,
and the sampler it ran with), so each execution of a trial can be counted after the fact, and
a point run twice shows as two claims.
"""

from __future__ import annotations

import datetime
import warnings
from collections import Counter

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from search import signals
from search.study.queue.identity import worker_identity
from search.study.queue.locks import claim_lock, study_lock
from search.study.space.space import Space, point_key
from search.study.storage import records
from search.study.storage.internals import rdb, storage_of, trial_id

DONE = (TrialState.COMPLETE, TrialState.PRUNED)
PENDING = (TrialState.WAITING, TrialState.RUNNING)
QUEUE_WINDOW = 64  # grid points waiting in the queue at a time (see enqueue_missing)


def _record_claim(study: optuna.Study, row: int) -> None:
    """The trial's owner (for recovery) and a claim record of its own (for counting)."""
    me = worker_identity()
    # Killed right before this, the trial has no owner: fail_dead_trials allows for it.
    storage_of(study).set_trial_user_attr(row, records.WORKER, me)
    claim = {
        **me,
        "at": datetime.datetime.now(datetime.UTC).isoformat(),
        "sampler": type(study.sampler).__name__,
    }
    records.add(study, row, records.CLAIM, claim)


def grid_status(study: optuna.Study, space: Space) -> dict[str, Counter]:
    """Per grid point, how many of its trials are in each state."""
    status: dict[str, Counter] = {point_key(p): Counter() for p in space.points}
    for t in study.get_trials(deepcopy=False):
        key = records.point_of(t)
        if key in status:
            status[key][t.state] += 1
    return status


def enqueue_missing(
    study: optuna.Study, space: Space, max_retries: int, window: int | None
) -> int:
    """Queue grid points that are neither done, nor queued or running, nor out of retries,
    until ``window`` are waiting (None: all of them); return how many were queued.

    Under the study's lock, so that two processes never queue the same point twice. A claim
    reads the whole queue through Optuna, so a short queue keeps a 2,187-point grid's claims
    as cheap as a 15-point one's; an empty queue is topped up by ``recover``.
    """
    added = 0
    with study_lock(rdb(study), study.study_name):
        status = grid_status(study, space)
        waiting = sum(counts[TrialState.WAITING] for counts in status.values())
        for point in space.points:
            if window is not None and waiting >= window:
                break
            counts = status[point_key(point)]
            if any(counts[s] for s in DONE + PENDING) or counts[TrialState.FAIL] > max_retries:
                continue
            study.enqueue_trial(point, user_attrs={records.POINT: point_key(point)})
            added += 1
            waiting += 1
    return added


def claim_waiting(study: optuna.Study) -> optuna.Trial | None:
    """Take one WAITING trial for this process, or None when the queue is empty. A stop waits
    until the claim is whole; the runner then fails the trial before it runs."""
    storage = storage_of(study)
    with signals.deferred(raise_after=False), claim_lock(rdb(study), study.study_name):
        # get_trials (not a bare query) also tells Optuna's trial cache about the claim.
        for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            try:
                if not storage.set_trial_state_values(trial_id(t), TrialState.RUNNING):
                    continue  # another worker won it
            except UpdateFinishedTrialError:
                continue
            _record_claim(study, trial_id(t))
            return optuna.Trial(study, trial_id(t))
    return None


def ask(study: optuna.Study) -> optuna.Trial:
    """A new trial from the sampler, with its owner recorded (a stop as in claim_waiting)."""
    with signals.deferred(raise_after=False), warnings.catch_warnings():
        # Optuna warns that heartbeats go with study.optimize: this loop beats itself.
        warnings.simplefilter("ignore", UserWarning)
        trial = study.ask()
        _record_claim(study, trial_id(trial))
    return trial
