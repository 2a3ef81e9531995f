"""A study's budget: how many trials, how much trial time, and how often a grid point reruns;
and how much of it is left to run (``planned``, for the progress bar).

Both budgets count for the whole study, not for one process: ``n_trials`` every trial started,
whatever its end (complete, pruned or failed), except those failed by an interruption (Ctrl-C,
SIGTERM, a dead worker), whose points run again; ``timeout`` the trial time every process has
used. So a rerun tops up instead of starting again.
"""

from __future__ import annotations

from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

from search.study.queue.claims import DONE, QUEUE_WINDOW, grid_status
from search.study.space.space import Space
from search.study.storage import records

COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.FAIL)


@dataclass(frozen=True)
class RunnerConfig:
    n_trials: int | None = None  # budget for the whole study, not for this process
    timeout: float | None = None  # seconds of trial time for the whole study
    max_retries: int = 2  # reruns of a grid point whose trial failed
    queue_window: int | None = QUEUE_WINDOW  # grid points queued at a time; None: all


def counted_trials(study: optuna.Study) -> int:
    """The trials the budget counts: every one started, less the interrupted ones. (Optuna's
    ``MaxTrialsCallback`` stops a study only inside ``optimize``, which the runner cannot use.)"""
    started = study.get_trials(deepcopy=False, states=COUNTED)
    return sum(1 for t in started if not records.interrupted(t))


def study_seconds(study: optuna.Study) -> float:
    """Trial time the study has used so far, over every process that worked on it."""
    return sum(
        (t.datetime_complete - t.datetime_start).total_seconds()
        for t in study.get_trials(deepcopy=False, states=DONE + (TrialState.FAIL,))
        if t.datetime_start and t.datetime_complete
    )


def planned(study: optuna.Study, space: Space, cfg: RunnerConfig) -> tuple[int, int]:
    """(trials in the plan, trials still to run) for a progress bar over the whole study."""
    budget_left = None if cfg.n_trials is None else max(0, cfg.n_trials - counted_trials(study))
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
