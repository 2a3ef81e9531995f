"""A study's best configuration, written as a space file that ``--space`` accepts.

Every value is fixed; turning any of them into a list or a ``{low, high}`` range refines the
search around it. The best is by the study's first objective, in its direction; on a Pareto
front (several objectives) the file says which objective chose it.
"""

from __future__ import annotations

import json
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from search.errors import SearchError
from search.study.space.spacefile import FILE_SETTINGS
from search.study.storage import records
from search.study.storage.settings import StudySettings
from search.study.storage.trials import metrics_text, ranked, shown


def best_trial(study: optuna.Study) -> FrozenTrial:
    """The best complete trial by the first objective (also on a Pareto front)."""
    done = ranked(study)
    if not done:
        raise SearchError(f"study {study.study_name!r} has no completed trial yet")
    return done[0]


def objective_name(study: optuna.Study) -> str:
    """The first objective's metric, as the study named it."""
    names = study.metric_names
    return names[0] if names else "objective"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))  # a TOML basic string for plain text


def ran_params(study: optuna.Study, trial: FrozenTrial) -> dict[str, Any]:
    """The trial's parameters as it ran them: capped epochs (``--max-epochs``) and the MLP's
    warm-up shrunk with them, not the values the space gave."""
    params = dict(trial.params)
    epochs = records.small(trial, records.EPOCHS)
    if epochs is not None and "epochs" in params:
        params["epochs"] = epochs
    train = records.config(study, trial).get("train")
    if train and "warmup_epochs" in params:
        params["warmup_epochs"] = train["schedule"]["warmup_epochs"]
    return params


def _settings(study: optuna.Study) -> tuple[StudySettings | None, dict[str, Any]]:
    stored = records.study_record(study, records.SETTINGS)
    if not stored:
        return None, {}
    settings = StudySettings.from_attr(stored)
    kept = {k: stored.get(k) for k in FILE_SETTINGS if stored.get(k) is not None}
    if not settings.built_in:
        kept.pop("dataset", None)
        kept.pop("judge_epoch", None)
    return settings, kept


def to_toml(study: optuna.Study, trial: FrozenTrial) -> str:
    """A space file of one point that reruns the trial: its parameters as they ran, and in
    ``[settings]`` the data and judging rule it was measured with."""
    params = ran_params(study, trial)
    settings, kept = _settings(study)
    metric = objective_name(study)
    images = records.small(trial, records.TRAIN_IMAGES)
    task = "" if settings is None or settings.built_in else f"--task {settings.task} "
    chosen = (
        f"; chosen by {metric}, the first of its {len(study.directions)} objectives"
        if len(study.directions) > 1
        else ""
    )
    lines = [
        f"# Best trial {trial.number} of study {study.study_name!r}{chosen}: {metric} "
        f"{shown(metric, trial.values[0])}; {metrics_text(trial)}; epochs "
        f"{params.get('epochs', records.small(trial, records.EPOCHS) or '?')}"
        + (f", {images:,} training images" if images else ""),
        f"# Rerun it: python -m search.run {task}--sampler grid --space FILE.toml",
        f"name = {json.dumps(f'best-of-{study.study_name}')}",
        "",
        "[params]",
    ]
    lines += [f"{k} = {_toml_value(v)}" for k, v in params.items()]
    if kept:
        lines += ["", "[settings]  # what it was measured with; options on a command win"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in kept.items()]
    if settings is not None and not settings.built_in:
        for name, direction in settings.objective_metrics():
            lines += ["", "[[objective]]", f"metric = {json.dumps(name)}"]
            lines.append(f"direction = {json.dumps(direction)}")
    return "\n".join(lines) + "\n"
