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
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from search.errors import SearchError
from search.objective import Objective
from search.space import Space, point_key
from search.storage import (
    GRACE_S,
    HEARTBEAT_S,
    fail_orphaned_trials,
    fail_stale_trials,
    grid_lock,
    rdb,
    trial_ids,
    worker_identity,
)

DONE = (TrialState.COMPLETE, TrialState.PRUNED)
IDLE_POLL_S = 1.0  # an idle worker looks this often for a point to rerun while others run
QUEUE_WINDOW = 64  # grid points waiting in the queue at a time (see enqueue_missing)
PENDING = (TrialState.WAITING, TrialState.RUNNING)


@dataclass(frozen=True)
class RunnerConfig:
    n_trials: int | None = None  # budget for the whole study, not for this process
    timeout: float | None = None  # seconds for this process
    max_retries: int = 2  # reruns of a grid point whose trial failed
    queue_window: int | None = QUEUE_WINDOW  # grid points queued at a time; None: all


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
    with grid_lock(rdb(study), study.study_name):
        status = grid_status(study, space)
        waiting = sum(counts[TrialState.WAITING] for counts in status.values())
        for point in space.points:
            if window is not None and waiting >= window:
                break
            counts = status[point_key(point)]
            if any(counts[s] for s in DONE + PENDING) or counts[TrialState.FAIL] > max_retries:
                continue
            study.enqueue_trial(point, user_attrs={"point": point_key(point)})
            added += 1
            waiting += 1
    return added


def recover(study: optuna.Study, space: Space, cfg: RunnerConfig) -> int:
    """Fail the trials of dead workers (here: by process id; anywhere: by heartbeat), then
    top up the queue (their points included); return how many points were queued."""
    fail_orphaned_trials(rdb(study), study)
    fail_stale_trials(study)
    if not space.is_grid:
        return 0
    return enqueue_missing(study, space, cfg.max_retries, cfg.queue_window)


@contextlib.contextmanager
def heartbeat(study: optuna.Study, trial_id: int) -> Iterator[None]:
    """Record that this trial is alive every HEARTBEAT_S seconds while the block runs."""
    storage, stop = rdb(study), threading.Event()

    def beat() -> None:
        while not stop.is_set():
            with contextlib.suppress(Exception):  # a missed beat only delays nothing
                storage.record_heartbeat(trial_id)
            stop.wait(HEARTBEAT_S)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextlib.contextmanager
def _no_sigint() -> Iterator[None]:
    """Hold Ctrl-C back while a claim is half made, and raise it once the claim is whole.

    Python runs signal handlers in the main thread, so a handler that only takes note is
    enough (masking the signal would not be: another thread could still receive it).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def _fail_interrupted(study: optuna.Study, trial: optuna.Trial) -> None:
    """Mark the trial FAIL "interrupted"; a second Ctrl-C meanwhile must not cut this short."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the process is on its way out
    trial.set_user_attr("fail_reason", "interrupted")
    study.tell(trial, state=TrialState.FAIL)


def claim_waiting(study: optuna.Study) -> optuna.Trial | None:
    """Take one WAITING trial for this process, or None when the queue is empty."""
    claimed: list[optuna.Trial] = []
    try:
        with _no_sigint():
            trial = _claim(study)
            if trial is not None:
                claimed.append(trial)
    except KeyboardInterrupt:  # held back until the claim was whole: release what it took
        for trial in claimed:
            _fail_interrupted(study, trial)
        raise
    return trial


def _claim(study: optuna.Study) -> optuna.Trial | None:
    storage = study._storage
    me = worker_identity()
    # get_trials (not a bare query) also tells Optuna's trial cache about the trial claimed.
    for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        try:
            if not storage.set_trial_state_values(t._trial_id, TrialState.RUNNING):
                continue  # another worker won it
        except UpdateFinishedTrialError:
            continue
        # Killed right here, the trial has no owner: fail_orphaned_trials allows for it.
        storage.set_trial_user_attr(t._trial_id, "worker", me)
        return optuna.Trial(study, t._trial_id)
    return None


def run_trial(study: optuna.Study, trial: optuna.Trial, objective: Objective) -> FrozenTrial:
    """Run the objective and finish the trial; a failure is recorded, never left RUNNING."""
    try:
        with heartbeat(study, trial._trial_id):
            outcome = objective(trial)
    except KeyboardInterrupt:
        _fail_interrupted(study, trial)
        raise
    except Exception as e:
        trial.set_user_attr("fail_reason", f"{type(e).__name__}: {e}")
        frozen = study.tell(trial, state=TrialState.FAIL)
        if isinstance(e, SearchError):
            raise
        return frozen
    if outcome.reason:
        trial.set_user_attr("reason", outcome.reason)
    return study.tell(trial, outcome.values, state=outcome.state)


def _started(study: optuna.Study) -> int:
    return len(trial_ids(study, DONE + (TrialState.RUNNING,)))


def study_seconds(study: optuna.Study) -> float:
    """Trial time the study has used so far, over every process that worked on it."""
    return sum(
        (t.datetime_complete - t.datetime_start).total_seconds()
        for t in study.get_trials(deepcopy=False, states=DONE + (TrialState.FAIL,))
        if t.datetime_start and t.datetime_complete
    )


def planned(study: optuna.Study, space: Space, cfg: RunnerConfig) -> tuple[int, int]:
    """(trials in the plan, trials still to run) for a progress bar over the whole study."""
    budget_left = None if cfg.n_trials is None else max(0, cfg.n_trials - _started(study))
    if space.is_grid:
        left = sum(
            1
            for counts in grid_status(study, space).values()
            if not any(counts[s] for s in DONE + (TrialState.RUNNING,))
            and counts[TrialState.FAIL] <= cfg.max_retries
        )
        todo = left if budget_left is None else min(left, budget_left)
        total = len(space.points) if cfg.n_trials is None else min(len(space.points), cfg.n_trials)
    else:
        todo, total = budget_left or 0, cfg.n_trials or 0
    if cfg.timeout is not None and study_seconds(study) >= cfg.timeout:
        todo = 0
    return max(total, todo), todo


def _ask(study: optuna.Study) -> optuna.Trial:
    """A new trial from the sampler, with its owner recorded (Ctrl-C as in claim_waiting)."""
    asked: list[optuna.Trial] = []
    try:
        with _no_sigint(), warnings.catch_warnings():
            # Optuna warns that heartbeats go with study.optimize: this loop beats itself.
            warnings.simplefilter("ignore", UserWarning)
            asked.append(study.ask())
            study._storage.set_trial_user_attr(asked[0]._trial_id, "worker", worker_identity())
    except KeyboardInterrupt:
        for trial in asked:
            _fail_interrupted(study, trial)
        raise
    return asked[0]


def run(
    study: optuna.Study,
    space: Space,
    objective: Objective,
    cfg: RunnerConfig,
    on_done: Callable[[FrozenTrial], None] | None = None,
    say: Callable[[str], None] | None = None,
) -> int:
    """Run trials until the grid is done or a budget is spent; return how many ran here.

    Both budgets count for the whole study: ``n_trials`` the finished and running trials,
    ``timeout`` the trial time already used, so a rerun tops up instead of starting again.
    """
    left = None if cfg.timeout is None else cfg.timeout - study_seconds(study)
    deadline = None if left is None else time.monotonic() + left
    ran, waiting = 0, False
    while deadline is None or time.monotonic() < deadline:
        if cfg.n_trials is not None and _started(study) >= cfg.n_trials:
            break
        if space.is_grid:
            trial = claim_waiting(study)
            # An empty queue may still leave failed points with retries to spare, or points
            # of workers that died; while others run, one of theirs may yet need a rerun.
            if trial is None and recover(study, space, cfg):
                trial = claim_waiting(study)
            if trial is None:
                running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                if running:
                    if say is not None and not waiting:
                        say(
                            f"waiting for {len(running)} trial(s) running elsewhere; a dead "
                            "worker's trial is rerun once found (at once on this machine, "
                            f"within {GRACE_S} s elsewhere)"
                        )
                    waiting = True
                    time.sleep(IDLE_POLL_S)
                    continue
                break
            waiting = False
        else:
            trial = _ask(study)
        frozen = run_trial(study, trial, objective)
        ran += 1
        if on_done is not None:
            on_done(frozen)
    return ran
