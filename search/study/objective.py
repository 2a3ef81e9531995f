"""Objective stage: one Optuna trial = one training run, with everything recorded on the trial.

The objective asks the space for a point (the only Optuna-facing step), trains it, reports the
validation accuracy every epoch so pruners can act, and stores the run's history as trial user
attributes, so that every chart can be redrawn from the database alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState

from search.engine.checkpoint import Checkpoint
from search.engine.config import ModelConfig, TrainConfig
from search.engine.data import Splits
from search.engine.history import EpochRecord
from search.engine.train import TrainResult, fit, warm_up
from search.errors import raise_if_stopped
from search.study import checkpoints
from search.study.runner import Outcome
from search.study.settings import OBJECTIVES
from search.study.space import Space
from search.study.vocabulary import to_configs


@dataclass(frozen=True)
class ObjectiveConfig:
    seed: int = 1
    max_epochs: int | None = None  # caps every trial's epochs
    objectives: tuple[str, ...] = ("accuracy",)
    judge: str = "last"  # which epoch's validation accuracy is the objective (history.JUDGES)

    @property
    def directions(self) -> list[str]:
        return [OBJECTIVES[name] for name in self.objectives]


class Objective:
    def __init__(
        self,
        space: Space,
        data: Splits,
        cfg: ObjectiveConfig,
        log: Callable[[str], None] | None = None,
        after_fit: Callable[[optuna.Trial, TrainResult], None] | None = None,
        checkpoints: Path | None = None,
    ) -> None:
        """``after_fit`` sees each finished run (with its model), e.g. to upload artifacts;
        ``checkpoints``: the study's checkpoint folder (search.study.checkpoints), or None."""
        self.space, self.data, self.cfg, self.log = space, data, cfg, log
        self.after_fit, self.checkpoints = after_fit, checkpoints

    def __call__(self, trial: optuna.Trial) -> Outcome:
        params = self.space.suggest(trial)
        model_cfg, train_cfg = to_configs(params, self.cfg.seed, self.cfg.max_epochs)
        trial.set_user_attr("config", {"model": asdict(model_cfg), "train": asdict(train_cfg)})
        # What ran, caps included, for every display: the params keep the space's values.
        trial.set_user_attr("epochs", train_cfg.epochs)
        trial.set_user_attr("train_images", len(self.data.train_x))
        single = len(self.cfg.objectives) == 1  # Optuna prunes single-objective studies only

        def on_epoch(rec: EpochRecord) -> bool:
            raise_if_stopped()  # a stop signal Python swallowed stops the trial here
            if single:
                trial.report(rec.val_acc, rec.epoch)
            if self.log:
                self.log(
                    f"  trial {trial.number} epoch {rec.epoch}: train loss "
                    f"{rec.train_loss:.4f}  val {rec.val_acc:.2%}  test {rec.test_acc:.2%}"
                    f"  {rec.seconds:.1f} s"
                )
            # After the last epoch the run is over: pruning it would save nothing.
            return single and rec.epoch < train_cfg.epochs and trial.should_prune()

        warm_up(model_cfg, train_cfg, self.data)  # so "seconds" times this run's training only
        result = self._fit(trial, model_cfg, train_cfg, on_epoch)
        attrs = {**result.to_attrs(self.cfg.judge), "device": str(self.data.device)}
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        if self.after_fit is not None:
            self.after_fit(trial, result)
        if result.outcome == "diverged":
            epoch = len(result.history) + 1
            return Outcome(
                TrialState.PRUNED, None, f"diverged: non-finite training loss in epoch {epoch}"
            )
        if result.outcome == "stopped":
            return Outcome(
                TrialState.PRUNED, None, f"pruned after epoch {result.history[-1].epoch}"
            )
        judged = result.judged(self.cfg.judge)
        assert judged is not None  # a completed run has at least one epoch
        measured = {
            "accuracy": judged.val_acc,
            "seconds": result.seconds,
            "params": float(result.n_params),
        }
        return Outcome(TrialState.COMPLETE, [measured[name] for name in self.cfg.objectives])

    def _fit(
        self,
        trial: optuna.Trial,
        model_cfg: ModelConfig,
        train_cfg: TrainConfig,
        on_epoch: Callable[[EpochRecord], bool],
    ) -> TrainResult:
        """The run, from the checkpoint of the trial's interrupted point where there is one,
        keeping its own every epoch; they are removed once it ends, unless a stop ends it."""
        folder = self.checkpoints
        if folder is None:
            return fit(model_cfg, train_cfg, self.data, on_epoch)
        mine = folder / checkpoints.file_for(trial.number)
        source = checkpoints.resumable(trial, folder)
        resume = None
        if source is not None:
            resume = Checkpoint.load(source.path)
            trial.set_user_attr(
                checkpoints.RESUMED_FROM, {"trial": source.trial, "epoch": source.epoch}
            )
            for rec in resume.history if len(self.cfg.objectives) == 1 else ():
                trial.report(rec.val_acc, rec.epoch)  # for the pruner: epochs it did not see

        def keep(checkpoint: Checkpoint) -> None:
            checkpoint.save(mine)
            trial.set_user_attr(checkpoints.ATTR, {"file": mine.name, "epoch": checkpoint.epoch})

        try:
            result = fit(model_cfg, train_cfg, self.data, on_epoch, resume, keep)
        except KeyboardInterrupt:  # a stop: the point reruns from here
            raise
        except BaseException:
            checkpoints.discard(mine)
            raise
        checkpoints.discard(mine, *([source.path] if source else []))
        return result
