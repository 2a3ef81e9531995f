"""Checkpoints: kept every epoch, found again when an interrupted point reruns.

A task's ``ctx.checkpoint`` keeps ``checkpoint.pt`` in the trial's folder
(``search.study.storage.folders``), replaced every epoch; it records the study's uid and the
trial's number, and the trial records the file and epoch (``search.study.storage.records``).
A trial stopped by Ctrl-C, SIGTERM (SLURM's and Kubernetes' preemption) or a dead worker is
failed "interrupted"; when its point runs again (a grid queues it again; for a sampler
``requeue_interrupted`` queues its parameters), the rerun goes on from the checkpoint and
records ``resumed_from``. A checkpoint of another study or trial is refused. A trial that
ends, however it ends, has its checkpoint removed; the best trial's weights become a
dashboard artifact first.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.study.queue.locks import study_lock
from search.study.storage import records
from search.study.storage.folders import study_uid
from search.study.storage.internals import rdb, trial_id
from search.task import WEIGHTS_FILE

CHECKPOINT_FILE = "checkpoint.pt"


def owner(study: optuna.Study, number: int) -> dict[str, Any]:
    """What a checkpoint records of whose it is."""
    return {"study": study_uid(study), "trial": number}


@dataclass(frozen=True)
class Resume:
    trial: int  # the interrupted trial
    epoch: int  # its last epoch kept
    path: Path


def resumable(study: optuna.Study, trial: optuna.Trial, artifact_dir: Path) -> Resume | None:
    """The checkpoint this trial goes on from: that of the latest interrupted trial of its
    point (a grid's ``point``, or a requeued trial's ``resume_of``) whose file is there."""
    attrs = trial.user_attrs
    if records.RESUME_OF in attrs:
        same = lambda t: t.number == attrs[records.RESUME_OF]  # noqa: E731
    elif records.POINT in attrs:
        same = lambda t: records.point_of(t) == attrs[records.POINT]  # noqa: E731
    else:
        return None
    failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    kept = records.rows(study, (records.CHECKPOINT,))
    mine = [t for t in failed if same(t) and records.interrupted(t)]
    for t in sorted(mine, key=lambda t: -t.number):  # the latest first
        found = kept.get(trial_id(t), {}).get(records.CHECKPOINT)
        if found and (artifact_dir / found[-1]["file"]).exists():
            return Resume(t.number, int(found[-1]["epoch"]), artifact_dir / found[-1]["file"])
    return None


def discard(*paths: Path) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)


def clear(folder: Path) -> None:
    """Remove the service's files from a trial's folder, and the folder if nothing is left
    (a task may keep files of its own there)."""
    discard(folder / CHECKPOINT_FILE, folder / WEIGHTS_FILE)
    with contextlib.suppress(OSError):
        folder.rmdir()


def requeue_interrupted(study: optuna.Study) -> int:
    """Queue again the parameters of a sampler's interrupted trials, once each, so that their
    points run (from their checkpoints); returns how many were queued.

    Not Optuna's ``RetryHeartbeatStaleTrialCallback``: it sees only trials failed as stale, not
    those a stop failed, and copies the dead trial's records onto the rerun
    (``tests/test_optuna_limits.py`` shows both)."""
    failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    if not any(records.interrupted(t) for t in failed):
        return 0
    with study_lock(rdb(study), study.study_name):
        trials = study.get_trials(deepcopy=False)
        done = {t.user_attrs.get(records.RESUME_OF) for t in trials}
        done |= {t.user_attrs.get(records.KEPT_FROM) for t in trials}  # finished all the same
        todo: list[FrozenTrial] = [
            t for t in trials if records.interrupted(t) and t.params and t.number not in done
        ]
        for t in todo:
            study.enqueue_trial(t.params, user_attrs={records.RESUME_OF: t.number})
    return len(todo)
