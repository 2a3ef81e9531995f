"""Print a study's best configuration as a space file that ``--space`` accepts.

    python -m search.best --study-name NAME [--storage URL] > best.toml
    python -m search.run --sampler grid --space best.toml      # rerun it
Every value is fixed; turn any of them into a list or a {low, high} range to refine around it.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.cli import Parser
from search.errors import SearchError
from search.storage import DEFAULT_STORAGE, load_existing_study


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
    lines = [
        f"# Best trial {trial.number} of study {study.study_name!r}: validation accuracy "
        f"{trial.values[0]:.2%}, test accuracy {trial.user_attrs.get('test_acc_at_best', 0):.2%}",
        f"name = {json.dumps(f'best-of-{study.study_name}')}",
        "",
        "[params]",
    ]
    lines += [f"{k} = {_toml_value(v)}" for k, v in trial.params.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="python -m search.best", description=__doc__.splitlines()[0])
    p.add_argument("--study-name", required=True)
    p.add_argument("--storage", default=DEFAULT_STORAGE)
    args = p.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = load_existing_study(args.storage, args.study_name)
        sys.stdout.write(to_toml(study, best_trial(study)))
    except SearchError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
