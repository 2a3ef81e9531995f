"""Keeps optuna-dashboard's view of a running study complete, trial by trial.

After each trial: the model weights of every new best trial as an artifact of the study, a
study note (what was run, the command that reproduces it, progress,
the current best and the final models of ``search.final``) and, for an ofat study, the
reference's figures as dashboard graph objects.
Artifacts live in a ``FileSystemArtifactStore`` beside the SQLite file (``study_db/artifacts``).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact
from optuna.trial import TrialState

from search.study.space.space import Space
from search.study.storage import records
from search.study.storage.records import note_of
from search.study.storage.settings import StudySettings
from search.study.storage.trials import metrics_text, ranked, shown
from search.views.best import objective_name, ran_params
from search.views.figures import factor_effects, factor_figure, factor_panels, overview_figure
from search.views.final import format_final
from search.views.summary import counts_line, run_line


def best_value(study: optuna.Study) -> float | None:
    """The best value of the first objective among the complete trials, in its direction."""
    best = ranked(study)
    return best[0].values[0] if best else None


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
    """A worker's observer (search.study.running.workers.Observer) that publishes to the
    dashboard."""

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

    def _upload_if_best(self, frozen: optuna.trial.FrozenTrial, weights: Path | None) -> None:
        """The weights the task kept (``ctx.save_weights``), as an artifact of the study (so
        they never become a column of the trials' table), when the trial is the best yet."""
        if frozen.state != TrialState.COMPLETE or weights is None or self.store is None:
            return
        if frozen.values[0] != best_value(self.study):
            return
        with tempfile.TemporaryDirectory() as tmp:
            named = Path(tmp) / f"trial-{frozen.number}-weights.pt"
            shutil.copyfile(weights, named)
            upload_artifact(
                artifact_store=self.store,
                file_path=str(named),
                study_or_trial=self.study,
                mimetype="application/octet-stream",
            )

    @_never_fails
    def finish(self) -> None:
        from optuna_dashboard import save_note

        save_note(self.study, study_note(self.study))

    @_never_fails
    def after_trial(self, frozen: optuna.trial.FrozenTrial, weights: Path | None) -> None:
        from optuna_dashboard import save_note, save_plotly_graph_object

        self._upload_if_best(frozen, weights)
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
    settings = records.study_record(s, records.SETTINGS, {})
    lines = [
        f"## {s.study_name}",
        "What was run: " + ", ".join(f"{k} {v}" for k, v in settings.items()),
        "",
        f"Reproduce: `{records.study_record(s, records.COMMAND, 'python -m search.run')}`",
        "",
    ]
    if settings:
        lines += [run_line(StudySettings.from_attr(settings), s), ""]
    lines.append(counts_line(s))
    failed = s.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    if failed:
        last = failed[-1]
        lines.append(f"Last failure: trial {last.number}: {note_of(last) or 'no reason'}")
    done = ranked(s)
    if done:
        best = done[0]
        params = ", ".join(f"{k}={v}" for k, v in ran_params(s, best).items())
        metric = objective_name(s)
        lines += [
            "",
            f"Current best: trial {best.number}, {metric} {shown(metric, best.values[0])}; "
            f"{metrics_text(best)} ({params})",
        ]
    final = records.study_record(s, records.FINAL)
    if final and final.get("configs"):
        lines += [
            "",
            "Final models (`python -m search.final`):",
            "```",
            format_final(final),
            "```",
        ]
    return "\n".join(lines) + "\n"
