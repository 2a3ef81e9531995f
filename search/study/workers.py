"""Workers: a process that claims a study's trials and runs them until none is left.

Every worker, whether ``search.run`` started it on this machine or ``python -m search.worker``
on another, gets its settings from one place: ``spec_from_study`` reads what the study
recorded (settings, space, budget) and adds what belongs to the machine (``HostOptions``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import optuna
import torch

from search.engine.data import DataConfig, Splits, load
from search.engine.datasets import default_data_dir
from search.engine.train import TrainResult
from search.study import checkpoints, runner
from search.study.identity import WORKER_ID
from search.study.objective import Objective, ObjectiveConfig
from search.study.samplers import startup_note
from search.study.settings import StudySettings, stored_budget, stored_settings, stored_space
from search.study.space import Space
from search.study.storage import artifact_dir_for, load_existing_study
from search.study.trials import progress_line


class Observer(Protocol):
    """Sees every run and every finished trial (the dashboard's publisher is one)."""

    def after_fit(self, trial: optuna.Trial, result: TrainResult) -> None: ...

    def after_trial(self, frozen: optuna.trial.FrozenTrial) -> None: ...

    def finish(self) -> None: ...


# Makes a worker's observer inside its own process: (study, space, artifact dir, say).
ObserverFactory = Callable[[optuna.Study, Space, Path, Callable[[str], None]], Observer]


@dataclass(frozen=True)
class HostOptions:
    """What belongs to the machine and the process, not to the study."""

    data_dir: str = ""  # "" is default_data_dir()
    device: str = "cpu"
    artifact_dir: str = ""  # "" is artifact_dir_for(storage)
    threads: int | None = None  # torch threads; None keeps torch's default (all cores)
    worker_id: int | None = None  # None for the CLI's own process
    verbose: bool = False
    quiet: bool = False


@dataclass(frozen=True)
class WorkerSpec:
    """Everything one worker needs; picklable, so it can start a process."""

    storage: str
    study_name: str
    settings: StudySettings
    space: Space
    runner: runner.RunnerConfig
    host: HostOptions

    @property
    def data(self) -> DataConfig:
        return data_config(self.settings, self.host.data_dir)

    @property
    def objective(self) -> ObjectiveConfig:
        s = self.settings
        return ObjectiveConfig(s.seed, s.max_epochs, s.objectives, s.judge_epoch)


def data_config(settings: StudySettings, data_dir: str) -> DataConfig:
    """The data a study's trials train on, from this machine's folder ("" for the default)."""
    return DataConfig(
        dataset=settings.dataset,
        data_dir=data_dir or default_data_dir(),
        val_size=settings.val_size,
        train_limit=settings.train_limit,
        seed=settings.seed,
    )


def spec_from_study(study: optuna.Study, storage: str, host: HostOptions) -> WorkerSpec:
    """A worker of an existing study, from what the study recorded when it was made."""
    return WorkerSpec(
        storage=storage,
        study_name=study.study_name,
        settings=stored_settings(study),
        space=stored_space(study),
        runner=stored_budget(study),
        host=host,
    )


def open_as_worker(spec: WorkerSpec) -> optuna.Study:
    study = load_existing_study(spec.storage, spec.study_name, writes=True)
    # One of several workers: a sampler seeded apart from the others' (a lone process keeps
    # the study's seed, so that one run reproduces another).
    offset = None if spec.host.worker_id is None else WORKER_ID
    study.sampler, study.pruner = spec.settings.search(spec.space, offset)
    return study


def work(
    spec: WorkerSpec,
    observe: ObserverFactory | None = None,
    on_done: Callable[[optuna.trial.FrozenTrial], None] | None = None,
    say: Callable[[str], None] | None = None,
    splits: Splits | None = None,
) -> int:
    """Run trials of the study in this process until there is none left; return how many."""
    host = spec.host
    if host.threads:
        torch.set_num_threads(host.threads)
    prefix = "" if host.worker_id is None else f"[worker {host.worker_id}] "
    alert = say or (lambda msg: print(prefix + msg, file=sys.stderr, flush=True))
    # --quiet hides progress, never a failure.
    say = (lambda _msg: None) if host.quiet else alert
    study = open_as_worker(spec)
    splits = splits or load(spec.data, torch.device(host.device))
    artifacts = Path(host.artifact_dir) if host.artifact_dir else artifact_dir_for(spec.storage)
    observer = observe(study, spec.space, artifacts, say) if observe else None
    objective = Objective(
        spec.space,
        splits,
        spec.objective,
        log=say if host.verbose else None,
        after_fit=observer.after_fit if observer else None,
        checkpoints=checkpoints.folder_for(artifacts, spec.study_name),
    )

    def done(t: optuna.trial.FrozenTrial) -> None:
        if observer is not None:
            observer.after_trial(t)
        line = progress_line(t, spec.space) + startup_note(study, spec.settings.sampler)
        (alert if t.state == optuna.trial.TrialState.FAIL else say)(line)
        if on_done is not None:
            on_done(t)

    try:
        return runner.run(study, spec.space, objective, spec.runner, done, say)
    finally:  # also when the run stops on an error: a study whose trials all failed says so
        if observer is not None:
            observer.finish()
