"""Keeps optuna-dashboard's view of a running study complete, trial by trial.

After each trial: its learning curve as a CSV artifact, the model weights of every new best
trial as an artifact, a study note (what was run, the command that reproduces it, progress,
the current best and the final models of ``search.final``) and, for an ofat study, the
reference's figures as dashboard graph objects.
Artifacts live in a ``FileSystemArtifactStore`` beside the SQLite file (``study_db/artifacts``).
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact
from optuna.trial import TrialState

from search.study.settings import StudySettings
from search.study.space import Space
from search.study.trials import judge_of, judged_epoch, note_of, pct
from search.views.best import ran_params
from search.views.figures import factor_effects, factor_figure, factor_panels, overview_figure
from search.views.summary import counts_line, format_final, run_line

if TYPE_CHECKING:  # the worker hands over the result; this module itself imports no torch
    from search.engine.train import TrainResult


def _values(study: optuna.Study) -> list[float]:
    return [t.values[0] for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]


def _never_fails(method):
    """Publishing is a view of the results: a failure there is reported once, never fatal."""

    def wrapper(self: Publisher, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except Exception as e:  # noqa: BLE001
            if not self.warned:
                self.warn(
                    f"warning: dashboard publishing failed ({type(e).__name__}: {e}); "
                    "results are unaffected"
                )
                self.warned = True

    return wrapper


class Publisher:
    """A worker's observer (search.study.workers.Observer) that publishes to the dashboard."""

    def __init__(
        self,
        study: optuna.Study,
        space: Space,
        artifact_dir: Path,
        warn: Callable[[str], None] = print,
    ) -> None:
        self.study, self.space, self.warn, self.warned = study, space, warn, False
        self.store: FileSystemArtifactStore | None = None
        self._open_store(artifact_dir)

    @_never_fails
    def _open_store(self, artifact_dir: Path) -> None:
        artifact_dir.mkdir(parents=True, exist_ok=True)
        self.store = FileSystemArtifactStore(str(artifact_dir))

    @_never_fails
    def after_fit(self, trial: optuna.Trial, result: TrainResult) -> None:
        """Upload the learning curve, and the weights if this run beats every finished one."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"trial-{trial.number}-learning-curve.csv"
            with open(path, "w", newline="") as f:
                rows = [asdict(r) for r in result.history]
                writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["epoch"])
                writer.writeheader()
                writer.writerows(rows)
            self._upload(trial, path, "text/csv")
            judged = result.judged(judge_of(trial))
            if (
                result.outcome == "completed"
                and judged
                and judged.val_acc > max(_values(self.study), default=float("-inf"))
            ):
                weights = Path(tmp) / f"trial-{trial.number}-weights.pt"
                result.save_weights(weights)
                self._upload(trial, weights, "application/octet-stream")

    def _upload(self, trial: optuna.Trial, path: Path, mimetype: str) -> None:
        if self.store is None:  # its folder could not be made: said once, at the start
            return
        upload_artifact(
            artifact_store=self.store, file_path=str(path), study_or_trial=trial, mimetype=mimetype
        )

    @_never_fails
    def finish(self) -> None:
        from optuna_dashboard import save_note

        save_note(self.study, study_note(self.study))

    @_never_fails
    def after_trial(self, frozen: optuna.trial.FrozenTrial) -> None:
        from optuna_dashboard import save_note, save_plotly_graph_object

        save_note(self.study, study_note(self.study))
        if self.space.grid != "ofat":
            return
        panels = factor_panels(self.study, self.space)
        save_plotly_graph_object(
            self.study, overview_figure(factor_effects(panels)), graph_object_id="ofat-overview"
        )
        for factor, entries in panels.items():
            if any(e["trial"] == frozen.number for e in entries):
                save_plotly_graph_object(
                    self.study, factor_figure(factor, entries), graph_object_id=f"ofat-{factor}"
                )


def study_note(s: optuna.Study) -> str:
    """The dashboard's note: what was run, how to reproduce it, the best so far, final models."""
    settings = s.user_attrs.get("settings", {})
    lines = [
        f"## {s.study_name}",
        "What was run: " + ", ".join(f"{k} {v}" for k, v in settings.items()),
        "",
        f"Reproduce: `{s.user_attrs.get('command', 'python -m search.run')}`",
        "",
    ]
    if settings:
        lines += [run_line(StudySettings.from_attr(settings), s), ""]
    lines.append(counts_line(s))
    failed = s.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    if failed:
        last = failed[-1]
        lines.append(f"Last failure: trial {last.number}: {note_of(last) or 'no reason'}")
    done = s.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if done:
        best = max(done, key=lambda t: t.values[0])
        params = ", ".join(f"{k}={v}" for k, v in ran_params(best).items())
        epoch = judged_epoch(best)
        lines += [
            "",
            f"Current best: trial {best.number}, validation accuracy "
            f"{pct(best.values[0])}, test accuracy "
            f"{pct(epoch.test_acc if epoch else None)} ({params})",
        ]
    final = s.user_attrs.get("final")
    if final and final.get("configs"):
        lines += [
            "",
            "Final models (`python -m search.final`):",
            "```",
            format_final(final),
            "```",
        ]
    return "\n".join(lines) + "\n"
