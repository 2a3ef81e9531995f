"""A study's budget: how many trials, how much trial time, and how often a grid point reruns.

Both budgets count for the whole study, not for one process: ``n_trials`` every trial started
(``search.study.running.failures``), ``timeout`` the trial time every process has used, so a
rerun tops up instead of starting again.
"""

from __future__ import annotations

from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

from search.study.queue.claims import DONE, QUEUE_WINDOW


@dataclass(frozen=True)
class RunnerConfig:
    n_trials: int | None = None  # budget for the whole study, not for this process
    timeout: float | None = None  # seconds of trial time for the whole study
    max_retries: int = 2  # reruns of a grid point whose trial failed
    queue_window: int | None = QUEUE_WINDOW  # grid points queued at a time; None: all


def study_seconds(study: optuna.Study) -> float:
    """Trial time the study has used so far, over every process that worked on it."""
    return sum(
        (t.datetime_complete - t.datetime_start).total_seconds()
        for t in study.get_trials(deepcopy=False, states=DONE + (TrialState.FAIL,))
        if t.datetime_start and t.datetime_complete
    )
