"""Print a study's best configuration as a space file that ``--space`` accepts.

    python -m search.best --study-name NAME [--storage URL] > best.toml
    python -m search.run --sampler grid --space best.toml      # rerun it
Every value is fixed; turn any of them into a list or a {low, high} range to refine around it.
"""

from __future__ import annotations

import sys

import optuna

from search.cli import Parser, guarded
from search.study.storage.storage import default_storage, load_existing_study, storage_help
from search.views.best import best_trial, to_toml


def build_parser() -> Parser:
    p = Parser(
        prog="python -m search.best",
        description=__doc__.splitlines()[0],
        examples=[
            "python -m search.best --study-name mnist-default-tpe > best.toml",
            "python -m search.run --sampler grid --space best.toml   # rerun it",
        ],
    )
    p.add_argument("--study-name", required=True)
    p.add_argument("--storage", default=default_storage(), help=storage_help())
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def best() -> int:
        study = load_existing_study(args.storage, args.study_name)
        sys.stdout.write(to_toml(study, best_trial(study)))
        return 0

    return guarded(best, args.debug)


if __name__ == "__main__":
    sys.exit(main())
