"""The service side of a study trial's ``Context`` (``search.task.Recorder``).

It records every epoch the task reports (``search.study.storage.records``), tells the pruner the
first objective's metric, keeps the task's checkpoints in the trial's folder with whose they are,
and gives a rerun of an interrupted point the checkpoint it goes on from, with the epochs already
run, so the trial's history is whole and the pruner sees every epoch.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna

from search import signals
from search.study.running import checkpoints
from search.study.storage import records
from search.tasks.local import load_checkpoint, save_checkpoint


class TrialRecorder:
    def __init__(
        self,
        trial: optuna.Trial,
        metric: str | None,
        epochs: int,
        folder: Path,
        artifact_dir: Path,
        log: Callable[[str], None] | None = None,
    ) -> None:
        """``metric``: the one the pruner reads (None: no pruning, several objectives)."""
        self.trial, self.study, self.metric, self.epochs = trial, trial.study, metric, epochs
        self.folder, self.artifact_dir, self.log = folder, artifact_dir, log
        self.history: list[dict[str, float]] = []
        self.source: Path | None = None  # the checkpoint it resumed from, removed at its end

    def report(self, epoch: int, metrics: dict[str, float]) -> str | None:
        signals.stop_point()  # a report is a safe point: a stop ends the trial here
        row = {"epoch": epoch, **metrics}
        self.history.append(row)
        records.add(self.study, self.trial, records.EPOCH, row)
        if self.log:
            shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())
            self.log(f"  trial {self.trial.number} epoch {epoch}: {shown}")
        if not self._tell_pruner(row):
            return None
        # After the last epoch the run is over: pruning it would save nothing.
        if epoch < self.epochs and self.trial.should_prune():
            return f"pruned after epoch {epoch}"
        return None

    def _tell_pruner(self, row: dict[str, float]) -> bool:
        value = row.get(self.metric) if self.metric else None
        if value is None or not math.isfinite(value):
            return False
        self.trial.report(value, int(row["epoch"]))
        return True

    def save(self, payload: dict[str, Any]) -> None:
        epoch = int(self.history[-1]["epoch"]) if self.history else 0
        path = self.folder / checkpoints.CHECKPOINT_FILE
        whose = checkpoints.owner(self.study, self.trial.number)
        save_checkpoint(
            path, {**payload, "owner": whose, "epoch": epoch, "history": list(self.history)}
        )
        kept = {"file": path.relative_to(self.artifact_dir).as_posix(), "epoch": epoch}
        records.put(self.study, self.trial, records.CHECKPOINT, kept)

    def load(self) -> dict[str, Any] | None:
        source = checkpoints.resumable(self.study, self.trial, self.artifact_dir)
        if source is None:
            return None
        try:
            payload = load_checkpoint(source.path)
        except Exception as e:  # noqa: BLE001 - a damaged file: run from the start instead
            self._warn(f"checkpoint {source.path} unreadable ({type(e).__name__}); from scratch")
            return None
        if payload.get("owner") != checkpoints.owner(self.study, source.trial):
            self._warn(
                f"checkpoint {source.path} belongs to {payload.get('owner')}, not to trial "
                f"{source.trial} of this study; refused, running from scratch"
            )
            return None
        self.source = source.path
        self.history = [dict(row) for row in payload.pop("history")]
        for row in self.history:
            records.add(self.study, self.trial, records.EPOCH, row)
            self._tell_pruner(row)  # the epochs it did not see
        resumed = {"trial": source.trial, "epoch": source.epoch}
        self.trial.set_user_attr(records.RESUMED_FROM, resumed)
        return payload

    def note(self, key: str, value: Any) -> None:
        """A fact of the run a built-in task records (``records.SMALL`` on the trial, the
        rest in the records table)."""
        if key in records.SMALL:
            self.trial.set_user_attr(key, value)
        else:
            records.put(self.study, self.trial, key, value)

    def last_metrics(self) -> dict[str, float]:
        """The last reported epoch's metrics: what a pruned trial ended with."""
        return {
            k: v for k, v in (self.history[-1] if self.history else {}).items() if k != "epoch"
        }

    def finish(self, seconds: float, metrics: dict[str, float] | None = None) -> None:
        """What the run ended with; its checkpoint goes (the trial is over)."""
        self.trial.set_user_attr(records.SECONDS, round(seconds, 3))
        self.trial.set_user_attr(records.EPOCHS_RUN, len(self.history))
        if metrics is not None:
            shown = {k: v for k, v in metrics.items() if k != "seconds"}
            self.trial.set_user_attr(records.METRICS, shown)
        checkpoints.discard(self.folder / checkpoints.CHECKPOINT_FILE)
        if self.source is not None:  # the interrupted run's: its point is done now
            checkpoints.clear(self.source.parent)

    def _warn(self, message: str) -> None:
        print(f"warning: trial {self.trial.number}: {message}", file=sys.stderr, flush=True)
