"""A study's best configuration, written as a space file that ``--space`` accepts.

Every value is fixed; turning any of them into a list or a ``{low, high}`` range refines the
search around it.
"""

from __future__ import annotations

import json
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.errors import SearchError
from search.study.spacefile import FILE_SETTINGS
from search.study.trials import judged_epoch, pct


def best_trial(study: optuna.Study) -> FrozenTrial:
    """The best trial by validation accuracy (the first objective, also on a Pareto front)."""
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not done:
        raise SearchError(f"study {study.study_name!r} has no completed trial yet")
    return max(done, key=lambda t: (t.values[0], -t.number))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))  # a TOML basic string for plain text


def ran_params(trial: FrozenTrial) -> dict[str, Any]:
    """The trial's parameters as it ran them: capped epochs (``--max-epochs``) and the warm-up
    shrunk with them, from the configuration it recorded, not the values the space gave."""
    params = dict(trial.params)
    train = (trial.user_attrs.get("config") or {}).get("train")
    if train:
        params["epochs"] = train["epochs"]
        if "warmup_epochs" in params:
            params["warmup_epochs"] = train["schedule"]["warmup_epochs"]
    return params


def to_toml(study: optuna.Study, trial: FrozenTrial) -> str:
    """A space file of one point that reruns the trial: its parameters as they ran, and in
    ``[settings]`` the data and judging rule it was measured with."""
    epoch = judged_epoch(trial)
    params = ran_params(trial)
    settings = study.user_attrs.get("settings") or {}
    images = trial.user_attrs.get("train_images")
    lines = [
        f"# Best trial {trial.number} of study {study.study_name!r}: validation accuracy "
        f"{pct(trial.values[0])}, test accuracy {pct(epoch.test_acc if epoch else None)}, "
        f"epochs {params.get('epochs', '?')}"
        + (f", {images:,} training images" if images else ""),
        "# Rerun it: python -m search.run --sampler grid --space FILE.toml",
        f"name = {json.dumps(f'best-of-{study.study_name}')}",
        "",
        "[params]",
    ]
    lines += [f"{k} = {_toml_value(v)}" for k, v in params.items()]
    kept = {k: settings.get(k) for k in FILE_SETTINGS if settings.get(k) is not None}
    if kept:
        lines += ["", "[settings]  # what it was measured with; options on a command win"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in kept.items()]
    return "\n".join(lines) + "\n"
