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

from search.engine.data import DataConfig, Splits, default_data_dir, load
from search.engine.train import TrainResult
from search.study import runner
from search.study.identity import WORKER_ID
from search.study.objective import Objective, ObjectiveConfig
from search.study.settings import StudySettings, stored_budget, stored_settings, stored_space
from search.study.space import Space
from search.study.storage import artifact_dir_for, load_existing_study
from search.study.trials import progress_line


class Observer(Protocol):
    """Sees every run and every finished trial (the dashboard's publisher is one)."""

    def after_fit(self, trial: optuna.Trial, result: TrainResult) -> None: ...

    def after_trial(self, frozen: optuna.trial.FrozenTrial) -> None: ...


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
        s = self.settings
        data_dir = self.host.data_dir or default_data_dir()
        return DataConfig(
            dataset=s.dataset,
            data_dir=data_dir,
            val_size=s.val_size,
            train_limit=s.train_limit,
            seed=s.seed,
        )

    @property
    def objective(self) -> ObjectiveConfig:
        s = self.settings
        return ObjectiveConfig(s.seed, s.max_epochs, s.objectives, s.judge_epoch)


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
    study = load_existing_study(spec.storage, spec.study_name)
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
    say = say or (lambda msg: print(prefix + msg, file=sys.stderr, flush=True))
    if host.quiet:
        say = lambda _msg: None  # noqa: E731
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
    )

    def done(t: optuna.trial.FrozenTrial) -> None:
        if observer is not None:
            observer.after_trial(t)
        say(progress_line(t, spec.space))
        if on_done is not None:
            on_done(t)

    return runner.run(study, spec.space, objective, spec.runner, done, say)
