"""Runner: claims trials from a study and runs them, one at a time, until the work is done.

Grid designs never rely on a sampler to pick points: the missing points are queued as WAITING
trials and each runner claims one atomically (search.study.queue.claims), so every point is
run once however many runners share the study. A running trial beats a heartbeat; trials of dead
workers are failed and their points queued again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from search import signals
from search.errors import SearchError, one_line
from search.study.queue.claims import ask, claim_waiting, enqueue_missing
from search.study.queue.identity import is_local
from search.study.queue.recovery import GRACE_S, fail_dead_trials, heartbeat
from search.study.running.budget import RunnerConfig, counted_trials, study_seconds
from search.study.running.checkpoints import requeue_interrupted
from search.study.running.failures import stop_if_repeated
from search.study.space.space import Space
from search.study.storage import records
from search.study.storage.internals import trial_id

IDLE_POLL_S = 1.0  # an idle worker looks this often for a point to rerun while others run


@dataclass(frozen=True)
class Outcome:
    """What an objective tells the runner: the trial's state, its values and a reason."""

    state: TrialState
    values: list[float] | None = None
    reason: str = ""


Objective = Callable[[optuna.Trial], Outcome]
Say = Callable[[str], None]


class Wait:
    """A source's answer when it has no trial now but may have one soon."""


WAIT = Wait()


def recover(study: optuna.Study, space: Space, cfg: RunnerConfig) -> int:
    """Fail the trials of dead workers, then top up the queue (their points included);
    return how many points were queued."""
    fail_dead_trials(study)
    if not space.is_grid:
        return 0
    return enqueue_missing(study, space, cfg.max_retries, cfg.queue_window)


def run_trial(study: optuna.Study, trial: optuna.Trial, objective: Objective) -> FrozenTrial:
    """Run the objective and finish the trial; a failure is recorded, never left RUNNING."""
    try:
        signals.stop_point()  # a stop that came while the trial was claimed
        with heartbeat(study, trial_id(trial)):
            outcome = objective(trial)
    except KeyboardInterrupt:
        _fail(study, trial, records.FailKind.INTERRUPTED, "interrupted", raise_after=False)
        raise
    except Exception as e:
        frozen = _fail(study, trial, records.FailKind.ERROR, one_line(e))
        if isinstance(e, SearchError):
            raise
        return frozen
    with signals.deferred():
        try:
            if outcome.reason:
                trial.set_user_attr(records.REASON, outcome.reason)
            return study.tell(trial, outcome.values, state=outcome.state)
        except (UpdateFinishedTrialError, ValueError):  # failed meanwhile, as stale
            return _keep(study, trial, outcome)


def _fail(
    study: optuna.Study,
    trial: optuna.Trial,
    kind: records.FailKind,
    reason: str,
    raise_after: bool = True,
) -> FrozenTrial:
    """Tell the trial FAIL with its kind and reason. A stop meanwhile waits, as it would leave
    the trial RUNNING (``raise_after``: as in ``signals.deferred``)."""
    with signals.deferred(raise_after):
        for key, value in records.failure(kind, reason).items():
            trial.set_user_attr(key, value)
        return study.tell(trial, state=TrialState.FAIL)


def _keep(study: optuna.Study, trial: optuna.Trial, outcome: Outcome) -> FrozenTrial:
    """A trial failed as stale (its heartbeat was late) that finished all the same: its result
    is kept as a new trial of the same point, so the training is never thrown away."""
    failed = next(t for t in study.get_trials(deepcopy=False) if t.number == trial.number)
    if failed.state != TrialState.FAIL:
        raise RuntimeError(f"trial {trial.number} is {failed.state.name}; cannot tell it")
    note = f"kept: finished after it was failed as stale (trial {failed.number})"
    gone = (records.FAIL_REASON, records.FAIL_KIND)
    attrs = {k: v for k, v in failed.user_attrs.items() if k not in gone}
    attrs[records.REASON] = f"{outcome.reason}; {note}" if outcome.reason else note
    attrs[records.KEPT_FROM] = failed.number
    study.add_trial(
        optuna.trial.create_trial(
            state=outcome.state,
            values=outcome.values,
            params=failed.params,
            distributions=failed.distributions,
            user_attrs=attrs,
            intermediate_values=failed.intermediate_values,
        )
    )
    kept = next(
        t
        for t in study.get_trials(deepcopy=False)
        if t.user_attrs.get(records.KEPT_FROM) == failed.number
    )
    records.copy(study, failed, kept, (records.EPOCH, records.CURVE, records.CONFIG, records.RUN))
    return kept


class GridSource:
    """The grid's trials: a queued point claimed by this worker. While other workers still run
    the last points, one of theirs may yet need a rerun here (its worker died): wait."""

    def __init__(self, study: optuna.Study, space: Space, cfg: RunnerConfig, say: Say) -> None:
        self.study, self.space, self.cfg, self.say = study, space, cfg, say
        self.told = False  # that this worker waits for others: said once per wait

    def next_trial(self) -> optuna.Trial | Wait | None:
        trial = claim_waiting(self.study)
        # An empty queue may still leave failed points with retries to spare, or points of
        # workers that died.
        if trial is None and recover(self.study, self.space, self.cfg):
            trial = claim_waiting(self.study)
        if trial is not None:
            self.told = False
            return trial
        running = self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if not running:
            return None
        # A local worker's last trial needs no word; one elsewhere may be dead.
        remote = [t for t in running if not is_local(records.owner_of(t) or {})]
        if remote and not self.told:
            self.say(
                f"waiting for {len(remote)} trial(s) running elsewhere; a dead worker's trial "
                f"is rerun once found (at once on this machine, within {GRACE_S} s elsewhere)"
            )
        self.told = True
        return WAIT


class SamplerSource:
    """A sampler's trials: a queued one first (an interrupted trial's parameters, to go on from
    its checkpoint, or a warm start), claimed as a grid's point is, else a new suggestion.
    Not ``study.ask`` for the queued ones: its pop takes them without the claim's lock."""

    def __init__(self, study: optuna.Study) -> None:
        self.study = study

    def next_trial(self) -> optuna.Trial:
        requeue_interrupted(self.study)
        return claim_waiting(self.study) or ask(self.study)


def source_for(
    study: optuna.Study, space: Space, cfg: RunnerConfig, say: Say
) -> GridSource | SamplerSource:
    """Where a worker's trials come from: the one place the loop asks whether it runs a grid."""
    return GridSource(study, space, cfg, say) if space.is_grid else SamplerSource(study)


def run(
    study: optuna.Study,
    space: Space,
    objective: Objective,
    cfg: RunnerConfig,
    on_done: Callable[[FrozenTrial], None] | None = None,
    say: Say | None = None,
) -> int:
    """Run trials until the source is empty or a budget is spent; return how many ran here.

    Both budgets count for the whole study: ``n_trials`` every trial started (see
    search.study.running.budget), ``timeout`` the trial time already used, so a rerun tops up
    instead of starting again. Repeated failures stop the run (``RepeatedFailure``).
    """
    left = None if cfg.timeout is None else cfg.timeout - study_seconds(study)
    deadline = None if left is None else time.monotonic() + left
    source = source_for(study, space, cfg, say or (lambda _msg: None))
    ran = 0
    while deadline is None or time.monotonic() < deadline:
        signals.stop_point()  # between trials
        if cfg.n_trials is not None and counted_trials(study) >= cfg.n_trials:
            break
        trial = source.next_trial()
        if trial is None:
            break
        if trial is WAIT:
            signals.wait(IDLE_POLL_S)
            continue
        frozen = run_trial(study, trial, objective)
        ran += 1
        if on_done is not None:
            on_done(frozen)
        if frozen.state == TrialState.FAIL:
            stop_if_repeated(study)
    return ran
