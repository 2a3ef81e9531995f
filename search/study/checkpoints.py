"""Checkpoints of running trials: kept every epoch, found again when an interrupted point reruns.

A running trial keeps its latest checkpoint (search.engine.checkpoint) in the artifact folder,
``checkpoints/STUDY/trial-N.pt``, replaced at the end of every epoch, and records the epoch on
the trial (user attribute ``checkpoint``). A trial stopped by Ctrl-C, SIGTERM (SLURM's and
Kubernetes' preemption) or a dead worker is failed "interrupted"; when its point runs again (a
grid queues it again; for a sampler ``requeue_interrupted`` queues its parameters), the rerun
goes on from the checkpoint and records ``resumed_from`` (the trial and its epoch). A trial
that ends, however it ends, has its checkpoints removed: the best trial's weights are kept as
an artifact by the dashboard's publisher.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.study.failures import interrupted
from search.study.locks import study_lock
from search.study.queries import rdb

ATTR = "checkpoint"  # {"file": name in the study's folder, "epoch": the last epoch kept}
RESUME_OF = "resume_of"  # on a sampler's requeued trial: the interrupted trial's number
RESUMED_FROM = "resumed_from"  # on a resumed trial: {"trial": number, "epoch": epoch}


def folder_for(artifact_dir: Path, study_name: str) -> Path:
    """The study's checkpoint folder; its name is the study's, made safe for a path."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", study_name).lstrip(".").replace("..", "_")
    return artifact_dir / "checkpoints" / (safe or "study")


def file_for(trial_number: int) -> str:
    return f"trial-{trial_number}.pt"


@dataclass(frozen=True)
class Resume:
    trial: int  # the interrupted trial
    epoch: int  # its last epoch kept
    path: Path


def resumable(trial: optuna.Trial, folder: Path) -> Resume | None:
    """The checkpoint this trial goes on from: that of the latest interrupted trial of its
    point (a grid's ``point``, or a requeued trial's ``resume_of``) whose file is there."""
    attrs = trial.user_attrs
    if RESUME_OF in attrs:
        same = lambda t: t.number == attrs[RESUME_OF]  # noqa: E731
    elif "point" in attrs:
        same = lambda t: t.user_attrs.get("point") == attrs["point"]  # noqa: E731
    else:
        return None
    failed = trial.study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    for t in sorted((t for t in failed if same(t) and interrupted(t)), key=lambda t: -t.number):
        kept = t.user_attrs.get(ATTR)
        if kept and (folder / kept["file"]).exists():
            return Resume(t.number, int(kept["epoch"]), folder / kept["file"])
    return None


def discard(*paths: Path) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)


def requeue_interrupted(study: optuna.Study) -> int:
    """Queue again the parameters of a sampler's interrupted trials, once each, so that their
    points run (from their checkpoints); returns how many were queued."""
    failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    if not any(interrupted(t) for t in failed):
        return 0
    with study_lock(rdb(study), study.study_name):
        trials = study.get_trials(deepcopy=False)
        done = {t.user_attrs.get(RESUME_OF) for t in trials}
        done |= {t.user_attrs.get("kept_from_trial") for t in trials}  # finished all the same
        todo: list[FrozenTrial] = [
            t for t in trials if interrupted(t) and t.params and t.number not in done
        ]
        for t in todo:
            study.enqueue_trial(t.params, user_attrs={RESUME_OF: t.number})
    return len(todo)
