"""One model of the final step: a configuration trained with one seed, tested once.

``train_job`` runs in a worker process of ``search.final`` (or in its own): it loads the
study's task and its data once per process (``ctx.final``: training and validation data
together), runs ``train`` with ``ctx.final`` true, and returns the test metrics, how the run
ended and where the weights it kept are.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from search.engine.precision import resolve
from search.errors import UsageError
from search.study.running.objective import returned_metrics, trial_epochs
from search.study.storage.settings import StudySettings
from search.study.storage.trials import TIMING
from search.task import WEIGHTS_FILE, Context, DataContext, Pruned, seed_all
from search.tasks.loading import load_task


@dataclass(frozen=True)
class FinalConfig:
    top: int = 3  # configurations, the best by the first objective
    seeds: int = 3  # training seeds per configuration: the study's seed and the next ones
    workers: int = 1  # processes, each with cores / workers threads
    device: str = "cpu"
    data_dir: str = "data"
    task: str = ""  # where this machine has the study's task, if not where it was made


@dataclass(frozen=True)
class Job:
    """One model of the final step: a configuration trained with one seed."""

    trial: int
    seed: int
    params: dict[str, Any]
    settings: StudySettings
    task_hash: str
    cfg: FinalConfig
    threads: int | None  # torch threads in a worker process; None keeps the default
    folder: str  # the model's own folder (its weights, if the task keeps them)
    keep_weights: bool = False
    notes: dict[str, Any] = field(default_factory=dict)


class FinalRecorder:
    """The service side of a final run's Context: no pruning, no checkpoints; the facts a
    built-in task notes (its training images) are kept for the record."""

    def __init__(self) -> None:
        self.notes: dict[str, Any] = {}

    def report(self, epoch: int, metrics: dict[str, float]) -> str | None:
        return None

    def save(self, payload: dict[str, Any]) -> None:
        return None

    def load(self) -> dict[str, Any] | None:
        return None

    def note(self, key: str, value: Any) -> None:
        self.notes[key] = value


@functools.lru_cache(maxsize=1)  # a worker process loads the task's data once, for every job
def _task_and_data(job_key: tuple[str, str, str, str, str]) -> tuple[Any, Any]:
    ref, task_hash, settings_json, device, data_dir = job_key
    settings = StudySettings.from_attr(json.loads(settings_json))
    task = load_task(ref, "the study's task")
    if not task.built_in and task.source_hash != task_hash:
        raise UsageError(f"the task {task.ref} is not the one the study ran (its source changed)")
    data_ctx = DataContext(
        seed=settings.seed,
        device=torch.device(device),
        data_dir=Path(data_dir),
        train_limit=settings.train_limit,
        final=True,
        settings=settings.to_attr(),
    )
    seed_all(settings.seed)
    return task, task.load_data(data_ctx) if task.load_data else None


def train_job(job: Job) -> dict[str, Any]:
    """Train one model and read the test set once; runs in a worker process or in this one."""
    if job.threads:
        torch.set_num_threads(job.threads)
    s, cfg = job.settings, job.cfg
    key = (cfg.task or s.task, job.task_hash, json.dumps(s.to_attr()), cfg.device, cfg.data_dir)
    task, data = _task_and_data(key)
    recorder = FinalRecorder()
    ctx = Context(
        seed=job.seed,
        device=torch.device(cfg.device),
        data_dir=Path(cfg.data_dir),
        train_limit=s.train_limit,
        final=True,
        settings=s.to_attr(),
        data=data,
        epochs=trial_epochs(job.params, s.max_epochs),
        trial_dir=Path(job.folder),
        precision=resolve(s.precision or "fp32", torch.device(cfg.device))[0],
        recorder=recorder,
    )
    seed_all(job.seed)
    start, outcome, metrics = time.perf_counter(), "completed", {}
    try:
        metrics = returned_metrics(task.train(dict(job.params), ctx), 0.0)
    except Pruned as stop:
        outcome = str(stop)
    weights = Path(job.folder) / WEIGHTS_FILE
    return {
        "trial": job.trial,
        "seed": job.seed,
        "metrics": {k: v for k, v in metrics.items() if k not in TIMING},
        "outcome": outcome,
        "seconds": round(time.perf_counter() - start, 2),
        "weights": str(weights) if job.keep_weights and weights.is_file() else "",
        "notes": recorder.notes,
    }
