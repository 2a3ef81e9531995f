"""Runner: claims trials from a study and runs them, one at a time, until the work is done.

Grid designs never rely on a sampler to pick points: the missing points are enqueued as WAITING
trials and each runner claims one atomically (the storage's WAITING -> RUNNING update succeeds
for one claimant only), so every point is run once however many runners share the study.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from search.errors import SearchError
from search.objective import Objective
from search.space import Space, point_key
from search.storage import worker_identity

DONE = (TrialState.COMPLETE, TrialState.PRUNED)
PENDING = (TrialState.WAITING, TrialState.RUNNING)


@dataclass(frozen=True)
class RunnerConfig:
    n_trials: int | None = None  # budget for the whole study, not for this process
    timeout: float | None = None  # seconds for this process
    max_retries: int = 2  # reruns of a grid point whose trial failed


def trial_point(t: FrozenTrial) -> str | None:
    return t.user_attrs.get("point")


def grid_status(study: optuna.Study, space: Space) -> dict[str, Counter]:
    """Per grid point, how many of its trials are in each state."""
    status: dict[str, Counter] = {point_key(p): Counter() for p in space.points}
    for t in study.get_trials(deepcopy=False):
        key = trial_point(t)
        if key in status:
            status[key][t.state] += 1
    return status


def enqueue_missing(study: optuna.Study, space: Space, max_retries: int) -> int:
    """Queue every grid point that is neither done, nor queued or running, nor out of retries."""
    added = 0
    status = grid_status(study, space)
    for point in space.points:
        counts = status[point_key(point)]
        if any(counts[s] for s in DONE + PENDING) or counts[TrialState.FAIL] > max_retries:
            continue
        study.enqueue_trial(point, user_attrs={"point": point_key(point)})
        added += 1
    return added


@contextlib.contextmanager
def _no_sigint() -> Iterator[None]:
    """Hold Ctrl-C back while a claim is half made (RUNNING but no owner recorded yet)."""
    main = threading.current_thread() is threading.main_thread()
    if not hasattr(signal, "pthread_sigmask") or not main:
        yield
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def claim_waiting(study: optuna.Study) -> optuna.Trial | None:
    """Take one WAITING trial for this process, or None when the queue is empty."""
    with _no_sigint():
        return _claim(study)


def _claim(study: optuna.Study) -> optuna.Trial | None:
    storage = study._storage
    for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        try:
            if not storage.set_trial_state_values(t._trial_id, TrialState.RUNNING):
                continue
        except UpdateFinishedTrialError:
            continue
        storage.set_trial_user_attr(t._trial_id, "worker", worker_identity())
        return optuna.Trial(study, t._trial_id)
    return None


def run_trial(study: optuna.Study, trial: optuna.Trial, objective: Objective) -> FrozenTrial:
    """Run the objective and finish the trial; a failure is recorded, never left RUNNING."""
    try:
        outcome = objective(trial)
    except KeyboardInterrupt:
        trial.set_user_attr("fail_reason", "interrupted")
        study.tell(trial, state=TrialState.FAIL)
        raise
    except Exception as e:
        trial.set_user_attr("fail_reason", f"{type(e).__name__}: {e}")
        frozen = study.tell(trial, state=TrialState.FAIL)
        if isinstance(e, SearchError):
            raise
        return frozen
    if outcome.reason:
        trial.set_user_attr("reason", outcome.reason)
    value = outcome.value if outcome.state == TrialState.COMPLETE else None
    return study.tell(trial, value, state=outcome.state)


def run(
    study: optuna.Study,
    space: Space,
    objective: Objective,
    cfg: RunnerConfig,
    on_done: Callable[[FrozenTrial], None] | None = None,
) -> int:
    """Run trials until the grid is done or the budget is spent; return how many ran here."""
    deadline = None if cfg.timeout is None else time.monotonic() + cfg.timeout
    ran = 0
    while deadline is None or time.monotonic() < deadline:
        if cfg.n_trials is not None:
            started = study.get_trials(deepcopy=False, states=DONE + (TrialState.RUNNING,))
            if len(started) >= cfg.n_trials:
                break
        if space.is_grid:
            trial = claim_waiting(study)
            # An empty queue may still leave failed points with retries to spare.
            if trial is None and enqueue_missing(study, space, cfg.max_retries):
                trial = claim_waiting(study)
            if trial is None:
                break
        else:
            trial = study.ask()
            study._storage.set_trial_user_attr(trial._trial_id, "worker", worker_identity())
        frozen = run_trial(study, trial, objective)
        ran += 1
        if on_done is not None:
            on_done(frozen)
    return ran
