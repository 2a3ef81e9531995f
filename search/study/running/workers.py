"""Workers: a process that claims a study's trials and runs them until none is left.

Every worker, whether ``search.run`` started it on this machine or ``python -m search.worker``
on another, gets its settings from one place: ``spec_from_study`` reads what the study
recorded (settings, space, budget, task) and adds what belongs to the machine
(``HostOptions``). A worker loads its task and the task's data once, then runs trial after
trial with them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import optuna
import torch

from search.engine.datasets import default_data_dir
from search.engine.precision import resolve
from search.errors import SearchError
from search.study.queue.identity import worker_id
from search.study.running import checkpoints, runner
from search.study.running.objective import Objective, ObjectiveConfig
from search.study.space.samplers import startup_note
from search.study.space.space import Space
from search.study.storage.folders import trial_folder
from search.study.storage.settings import (
    StudySettings,
    stored_budget,
    stored_settings,
    stored_space,
)
from search.study.storage.storage import artifact_dir_for, load_existing_study, records
from search.study.storage.trials import progress_line
from search.task import WEIGHTS_FILE, DataContext, seed_all
from search.tasks.loading import Task, load_task


class Observer(Protocol):
    """Sees every finished trial (the dashboard's publisher is one)."""

    def after_trial(self, frozen: optuna.trial.FrozenTrial, weights: Path | None) -> None:
        """``weights``: what the task kept with ``ctx.save_weights``, if it did."""

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
    # The worker's index among the study's workers: its sampler's seed is the study's seed
    # plus the index, so the same --seed and --workers suggest the same first points again.
    # 0 for search.run's own process; None for a worker started with no index, whose sampler
    # is seeded apart at random (identity.worker_id).
    index: int | None = 0
    name: str = ""  # how its lines are prefixed ("[worker NAME]"); "" for search.run's own
    task: str = ""  # where this machine finds the study's task, if not where it was made
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
    task_hash: str = ""  # the source hash the study records for its task

    @property
    def artifact_dir(self) -> Path:
        host = self.host
        return Path(host.artifact_dir) if host.artifact_dir else artifact_dir_for(self.storage)

    @property
    def objective(self) -> ObjectiveConfig:
        s = self.settings
        return ObjectiveConfig(
            objectives=s.objective_metrics(),
            seed=s.seed,
            max_epochs=s.max_epochs,
            train_limit=s.train_limit,
            data_dir=self.host.data_dir or default_data_dir(),
            device=self.host.device,
            precision=self.precision[0],
            settings=s.to_attr(),
        )

    @property
    def precision(self) -> tuple[str, str]:
        """(fp32 or bf16, why) on this worker's device: ``auto`` resolved."""
        return resolve(self.settings.precision or "fp32", torch.device(self.host.device))

    def data_context(self, device: str | None = None) -> DataContext:
        """What the task's load_data gets in this worker."""
        s = self.settings
        return DataContext(
            seed=s.seed,
            device=torch.device(device or self.host.device),
            data_dir=Path(self.host.data_dir or default_data_dir()),
            train_limit=s.train_limit,
            settings=s.to_attr(),
            log=logging.getLogger("search.task"),
        )

    def load_task(self) -> Task:
        """The study's task, from where this machine has it, as the study recorded it."""
        task = load_task(self.host.task or self.settings.task, "the study's task")
        if not task.built_in and task.source_hash != self.task_hash:
            raise SearchError(
                f"the task {task.ref} is not the one study {self.study_name!r} runs (its "
                "source changed); run the study's version, or resume with search.run "
                "--allow-task-change (or search.worker --allow-task-change)"
            )
        return task


def spec_from_study(study: optuna.Study, storage: str, host: HostOptions) -> WorkerSpec:
    """A worker of an existing study, from what the study recorded when it was made."""
    return WorkerSpec(
        storage=storage,
        study_name=study.study_name,
        settings=stored_settings(study),
        space=stored_space(study),
        runner=stored_budget(study),
        host=host,
        task_hash=records.study_record(study, records.TASK_HASH, ""),
    )


def load_data(task: Task, spec: WorkerSpec, device: str | None = None) -> Any:
    """The task's data for this process (None for a task without load_data)."""
    if task.load_data is None:
        return None
    seed_all(spec.settings.seed)
    return task.load_data(spec.data_context(device))


def open_as_worker(spec: WorkerSpec) -> optuna.Study:
    study = load_existing_study(spec.storage, spec.study_name, writes=True)
    # Each worker's sampler seeded apart from the others', or they would all suggest the
    # same points: by its index where it has one, so that a run can be reproduced.
    index = spec.host.index
    study.sampler, study.pruner = spec.settings.search(
        spec.space, worker_id() if index is None else index
    )
    return study


@dataclass(frozen=True)
class Loaded:
    """A task's data already loaded by the caller (``search.run``'s own process)."""

    task: Task
    data: Any


def work(
    spec: WorkerSpec,
    observe: ObserverFactory | None = None,
    on_done: Callable[[optuna.trial.FrozenTrial], None] | None = None,
    say: Callable[[str], None] | None = None,
    loaded: Loaded | None = None,
) -> int:
    """Run trials of the study in this process until there is none left; return how many."""
    host = spec.host
    if host.threads:
        torch.set_num_threads(host.threads)
    prefix = f"[worker {host.name}] " if host.name else ""
    alert = say or (lambda msg: print(prefix + msg, file=sys.stderr, flush=True))
    say = (lambda _msg: None) if host.quiet else alert  # --quiet hides progress, not failures
    study = open_as_worker(spec)
    task = loaded.task if loaded else spec.load_task()
    data = loaded.data if loaded else load_data(task, spec)
    artifacts = spec.artifact_dir
    observer = observe(study, spec.space, artifacts, say) if observe else None
    log = say if host.verbose else None
    objective = Objective(task, spec.space, data, spec.objective, artifacts, log)

    def done(t: optuna.trial.FrozenTrial) -> None:
        folder = trial_folder(artifacts, study, t.number)
        if observer is not None:
            weights = folder / WEIGHTS_FILE
            observer.after_trial(t, weights if weights.is_file() else None)
        if not records.interrupted(t):  # an interrupted trial's checkpoint is its point's rerun's
            checkpoints.clear(folder)
        line = progress_line(t, spec.space) + startup_note(study, spec.settings.sampler)
        (alert if t.state == optuna.trial.TrialState.FAIL else say)(line)
        if on_done is not None:
            on_done(t)

    try:
        return runner.run(study, spec.space, objective, spec.runner, done, say)
    finally:  # also when the run stops on an error: a study whose trials all failed says so
        if observer is not None:
            observer.finish()
