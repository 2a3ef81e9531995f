"""Failures: which trials a study's budget counts, and when repeated failures stop the study.

The budget (``--n-trials``) counts every trial started, whatever its end: complete, pruned or
failed. A trial failed by an interruption (Ctrl-C, SIGTERM, a dead worker) does not count: its
point runs again. A study stops when its last ``REPEATS`` trials failed for the same reason (a
space value no run accepts, a changed space, a broken install), so that a mistake costs a few
trials, not thousands.
"""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.errors import SearchError
from search.study.storage import records

REPEATS = 3  # consecutive failures with one reason that stop a study
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


class RepeatedFailure(SearchError):
    """The study's last trials all failed the same way; running more would fail too."""


def reason_of(t: FrozenTrial) -> str:
    return records.fail_reason(t)


def interrupted(t: FrozenTrial) -> bool:
    """Failed by a stop or a dead worker, not by its own run: its point runs again."""
    return t.state == TrialState.FAIL and records.fail_kind_of(t) == records.FailKind.INTERRUPTED


def counted_trials(study: optuna.Study) -> int:
    """The trials the budget counts: every one started, less the interrupted ones. (Optuna's
    ``MaxTrialsCallback`` stops a study only inside ``optimize``, which the runner cannot use.)"""
    started = study.get_trials(deepcopy=False, states=(*COUNTED, TrialState.FAIL))
    return sum(1 for t in started if not interrupted(t))


def repeated_failure(study: optuna.Study) -> str | None:
    """None, or why the study must stop: its last ``REPEATS`` finished trials (by the time
    they ended, interrupted ones aside) failed with one reason."""
    ended = [
        t
        for t in study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        )
        if t.datetime_complete is not None and not interrupted(t)
    ]
    ended.sort(key=lambda t: t.datetime_complete)
    run: list[FrozenTrial] = []
    for t in reversed(ended):
        if t.state != TrialState.FAIL or (run and reason_of(t) != reason_of(run[0])):
            break
        run.append(t)
    if len(run) < REPEATS:
        return None
    first = run[-1]
    return (
        f"stopped: {len(run)} trials in a row failed with the same reason, first trial "
        f"{first.number}: {reason_of(first)}; fix the cause, then run the same command to resume"
    )


def stop_if_repeated(study: optuna.Study) -> None:
    if (message := repeated_failure(study)) is not None:
        raise RepeatedFailure(message)
