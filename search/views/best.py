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


def to_toml(study: optuna.Study, trial: FrozenTrial) -> str:
    epoch = judged_epoch(trial)
    lines = [
        f"# Best trial {trial.number} of study {study.study_name!r}: validation accuracy "
        f"{pct(trial.values[0])}, test accuracy {pct(epoch.test_acc if epoch else None)}",
        f"name = {json.dumps(f'best-of-{study.study_name}')}",
        "",
        "[params]",
    ]
    lines += [f"{k} = {_toml_value(v)}" for k, v in trial.params.items()]
    return "\n".join(lines) + "\n"
