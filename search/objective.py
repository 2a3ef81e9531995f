"""Objective stage: one Optuna trial = one training run, with everything recorded on the trial.

The objective asks the space for a point (the only Optuna-facing step), trains it, reports the
validation accuracy every epoch so pruners can act, and stores the run's history as trial user
attributes, so that every chart can be redrawn from the database alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna

from search.data import Splits
from search.space import Space, to_configs
from search.train import EpochRecord, TrainResult, fit


@dataclass(frozen=True)
class ObjectiveConfig:
    seed: int = 1
    max_epochs: int | None = None  # caps every trial's epochs


@dataclass(frozen=True)
class Outcome:
    """What the runner needs to finish the trial: its state, value and a reason."""

    state: optuna.trial.TrialState
    value: float | None
    reason: str = ""


class Objective:
    def __init__(
        self,
        space: Space,
        data: Splits,
        cfg: ObjectiveConfig,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.space, self.data, self.cfg, self.log = space, data, cfg, log

    def __call__(self, trial: optuna.Trial) -> Outcome:
        params = self.space.suggest(trial)
        model_cfg, train_cfg = to_configs(params, self.cfg.seed, self.cfg.max_epochs)

        def on_epoch(rec: EpochRecord) -> bool:
            trial.report(rec.val_acc, rec.epoch)
            if self.log:
                self.log(
                    f"  trial {trial.number} epoch {rec.epoch}: train loss {rec.train_loss:.4f}"
                    f"  val {rec.val_acc:.2%}  test {rec.test_acc:.2%}  {rec.seconds:.1f} s"
                )
            return trial.should_prune()

        result = fit(model_cfg, train_cfg, self.data, on_epoch)
        self._record(trial, result)
        best = result.best
        if result.outcome == "diverged":
            epoch = len(result.history) + 1
            return Outcome(
                optuna.trial.TrialState.PRUNED,
                None,
                f"diverged: non-finite training loss in epoch {epoch}",
            )
        if result.outcome == "stopped":
            return Outcome(
                optuna.trial.TrialState.PRUNED,
                best.val_acc if best else None,
                f"pruned after epoch {result.history[-1].epoch}",
            )
        assert best is not None
        return Outcome(optuna.trial.TrialState.COMPLETE, best.val_acc)

    def _record(self, trial: optuna.Trial, result: TrainResult) -> None:
        attrs: dict[str, Any] = result.to_attrs()
        attrs["device"] = str(self.data.device)
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
