"""Objective stage: one Optuna trial = one call of the task's ``train``, everything recorded.

The objective asks the space for a point (the only Optuna-facing step), gives the task a
``Context`` whose recorder (``TrialRecorder``) keeps every reported epoch, tells the pruner,
and keeps checkpoints in the trial's folder; then it checks what ``train`` returned and turns
the study's objective metrics into the trial's values.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from search import signals
from search.study.running import checkpoints
from search.study.running.recorder import TrialRecorder
from search.study.running.runner import Outcome
from search.study.space.space import Space
from search.study.storage import records
from search.study.storage.folders import trial_folder
from search.task import Context, Pruned, as_number, seed_all
from search.tasks.loading import Task


class TaskError(Exception):
    """A task broke the contract (what train returned, a metric it never gave)."""


@dataclass(frozen=True)
class ObjectiveConfig:
    objectives: tuple[tuple[str, str], ...]  # (metric, direction), the first one pruned on
    seed: int = 1
    max_epochs: int | None = None  # caps every trial's epochs
    train_limit: int | None = None
    data_dir: str = "data"
    device: str = "cpu"
    precision: str = "fp32"
    settings: Mapping[str, Any] = field(default_factory=dict)  # the study's, for the task

    @property
    def single(self) -> bool:
        """Optuna prunes single-objective studies only."""
        return len(self.objectives) == 1


def trial_epochs(params: Mapping[str, Any], max_epochs: int | None) -> int:
    """A trial's epoch budget: its ``epochs`` parameter (the study's ``--epochs`` fixes it),
    else 1, capped by ``--max-epochs``."""
    epochs = int(params.get("epochs", 1))
    return epochs if max_epochs is None else min(epochs, max_epochs)


def returned_metrics(value: Any, seconds: float) -> dict[str, float]:
    """What ``train`` returned, as numbers; ``seconds`` (the call's wall time) unless given."""
    if not isinstance(value, Mapping):
        raise TaskError(
            f"train returned {type(value).__name__} {value!r:.60}; expected a dict of metrics, "
            "e.g. {'val_acc': 0.97}"
        )
    metrics = {str(k): as_number(f"train returned {k}", v) for k, v in value.items()}
    return {"seconds": round(seconds, 3), **metrics}


class Objective:
    def __init__(
        self,
        task: Task,
        space: Space,
        data: Any,
        cfg: ObjectiveConfig,
        artifact_dir: Path,
        log: Callable[[str], None] | None = None,
    ) -> None:
        """``data``: what the task's load_data returned in this process; ``artifact_dir``:
        where the trials' folders are (search.study.running.checkpoints)."""
        self.task, self.space, self.data, self.cfg = task, space, data, cfg
        self.artifact_dir, self.log = artifact_dir, log

    def __call__(self, trial: optuna.Trial) -> Outcome:
        params = self.space.suggest(trial)
        epochs = trial_epochs(params, self.cfg.max_epochs)
        trial.set_user_attr(records.EPOCHS, epochs)
        folder = trial_folder(self.artifact_dir, trial.study, trial.number)
        recorder = TrialRecorder(
            trial, self.cfg.objectives[0][0] if self.cfg.single else None, epochs, folder,
            self.artifact_dir, self.log,
        )  # fmt: skip
        folder.mkdir(parents=True, exist_ok=True)  # the task may write its own files there
        ctx = self._context(epochs, folder, recorder)
        seed_all(self.cfg.seed)  # the task's draws from the global generators repeat
        start = time.perf_counter()
        try:
            returned = self.task.train(dict(params), ctx)
        except Pruned as stop:
            recorder.finish(time.perf_counter() - start, recorder.last_metrics())
            return Outcome(TrialState.PRUNED, None, str(stop))
        except KeyboardInterrupt:  # a stop: the point reruns from its checkpoint
            raise
        except BaseException:
            checkpoints.clear(folder)
            raise
        signals.stop_point()
        metrics = returned_metrics(returned, time.perf_counter() - start)
        recorder.finish(metrics["seconds"], metrics)
        values = self._values(metrics, recorder)
        bad = next((m for (m, _), v in zip(self.cfg.objectives, values, strict=True)
                    if not math.isfinite(v)), None)  # fmt: skip
        if bad is not None:
            return Outcome(
                TrialState.PRUNED, None, f"diverged: train returned {bad} = {metrics[bad]}"
            )
        return Outcome(TrialState.COMPLETE, values)

    def _context(self, epochs: int, folder: Path, recorder: TrialRecorder) -> Context:
        cfg = self.cfg
        return Context(
            seed=cfg.seed,
            device=torch.device(cfg.device),
            data_dir=Path(cfg.data_dir),
            train_limit=cfg.train_limit,
            settings=cfg.settings,
            data=self.data,
            epochs=epochs,
            trial_dir=folder,
            precision=cfg.precision,
            recorder=recorder,
        )

    def _values(self, metrics: dict[str, float], recorder: TrialRecorder) -> list[float]:
        values = []
        for metric, _ in self.cfg.objectives:
            if metric not in metrics:
                reported = sorted({k for row in recorder.history for k in row} - {"epoch"})
                raise TaskError(
                    f"the objective's metric {metric!r} is not among the metrics train "
                    f"returned ({', '.join(sorted(metrics))}); it reported "
                    f"{', '.join(reported) or 'none'}"
                )
            values.append(metrics[metric])
        return values
