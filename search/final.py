"""Retrain a study's best configurations on every training image and test each model once.

    python -m search.final --study-name NAME [--storage URL] [--top 3] [--seeds 3]

The configurations are the study's best by validation accuracy; each trains with several seeds
(the study's seed and the next ones) on all training images, and is tested once, after its last
epoch. Mean and standard deviation of the test accuracy go into the study, where
``search.report`` and the dashboard show them; the best configuration's weights (first seed)
become an artifact of the study.
"""

from __future__ import annotations

import sys
from pathlib import Path

import optuna
from optuna_dashboard import save_note

from search.cli import Parser, guarded, positive_int
from search.engine.datasets import default_data_dir
from search.engine.device import DEVICES, resolve_device
from search.study.running.final import finalize
from search.study.running.final_run import FinalConfig
from search.study.running.pool import default_workers
from search.study.storage.settings import command_line
from search.study.storage.storage import (
    artifact_dir_for,
    default_storage,
    display_url,
    load_existing_study,
    storage_help,
)
from search.views.final import format_final
from search.views.publish import study_note


def build_parser() -> Parser:
    p = Parser(
        prog="python -m search.final",
        description=__doc__.splitlines()[0],
        examples=[
            "python -m search.final --study-name mnist-default-tpe",
            "python -m search.final --study-name mnist-default-tpe --top 5 --seeds 5",
        ],
    )
    p.add_argument("--study-name", required=True)
    p.add_argument("--storage", default=default_storage(), help=storage_help())
    p.add_argument(
        "--top", type=positive_int, default=FinalConfig.top, help="best configurations to retrain"
    )
    p.add_argument(
        "--seeds", type=positive_int, default=FinalConfig.seeds, help="seeds per configuration"
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        help="processes; default: one per core on the CPU when there are more models than cores",
    )
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument(
        "--task",
        help="where this machine has the study's task file, if not at the path the study "
        "recorded (its source must be the same)",
    )
    p.add_argument("--data-dir", help="default: $SEARCH_DATA_DIR or ./data")
    p.add_argument("--artifact-dir", help="default: artifacts/ beside an SQLite file")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def body() -> int:
        study = load_existing_study(args.storage, args.study_name, writes=True)
        device = resolve_device(args.device)
        models = args.top * args.seeds
        cfg = FinalConfig(
            top=args.top,
            seeds=args.seeds,
            workers=args.workers or default_workers(device.type, models),
            device=str(device),
            data_dir=args.data_dir or default_data_dir(),
            task=args.task or "",
        )
        artifacts = (
            Path(args.artifact_dir) if args.artifact_dir else artifact_dir_for(args.storage)
        )
        say = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
        record = finalize(study, cfg, artifacts, command_line("search.final", argv), say)
        print(f"study {study.study_name} in {display_url(args.storage)}")
        print(format_final(record))
        save_note(study, study_note(study))  # the dashboard shows the final models too
        return 0

    return guarded(body, args.debug, interrupted="interrupted: nothing was recorded")


if __name__ == "__main__":
    sys.exit(main())
