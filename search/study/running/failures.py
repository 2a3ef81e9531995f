"""Failures: when repeated failures stop a study.

A study stops when its last ``REPEATS`` trials failed for the same reason (a space value no
run accepts, a changed space, a broken install), so that a mistake costs a few trials, not
thousands. A trial failed by an interruption (Ctrl-C, SIGTERM, a dead worker) is not one of
them: its point runs again.
"""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.errors import SearchError
from search.study.storage import records

REPEATS = 3  # consecutive failures with one reason that stop a study


class RepeatedFailure(SearchError):
    """The study's last trials all failed the same way; running more would fail too."""


def repeated_failure(study: optuna.Study) -> str | None:
    """None, or why the study must stop: its last ``REPEATS`` finished trials (by the time
    they ended, interrupted ones aside) failed with one reason."""
    ended = [
        t
        for t in study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        )
        if t.datetime_complete is not None and not records.interrupted(t)
    ]
    ended.sort(key=lambda t: t.datetime_complete)
    run: list[FrozenTrial] = []
    for t in reversed(ended):
        reason = records.fail_reason(t)
        if t.state != TrialState.FAIL or (run and reason != records.fail_reason(run[0])):
            break
        run.append(t)
    if len(run) < REPEATS:
        return None
    first = run[-1]
    return (
        f"stopped: {len(run)} trials in a row failed with the same reason, first trial "
        f"{first.number}: {records.fail_reason(first)}; fix the cause, then run the same "
        "command to resume"
    )


def stop_if_repeated(study: optuna.Study) -> None:
    if (message := repeated_failure(study)) is not None:
        raise RepeatedFailure(message)
