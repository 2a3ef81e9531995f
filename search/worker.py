"""Join a study as a worker, from any machine that reaches its database.

    python -m search.worker --study-name NAME [--storage URL] [--data-dir DIR] [--device auto]
                            [--artifact-dir DIR]
(the URL from --storage, else $SEARCH_STORAGE, which keeps a password out of the process
listing, else the default SQLite file, as for search.run)
The study's space, settings and trial budget come from the database (``search.run`` recorded
them); the worker claims trials until none is left, then exits. ``python -m search.run
--workers N`` starts N of them on this machine.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace

import optuna

from search.cli import Parser, guarded, non_negative_int
from search.engine.device import DEVICES, resolve_device
from search.study.running.workers import HostOptions, spec_from_study, work
from search.study.storage.opening import check_task_source
from search.study.storage.storage import default_storage, load_existing_study, storage_help
from search.tasks.loading import load_task
from search.views.publish import Publisher


def build_parser() -> Parser:
    p = Parser(
        prog="python -m search.worker",
        description=__doc__.splitlines()[0],
        examples=[
            "python -m search.worker --study-name mnist-ofat",
            "SEARCH_STORAGE=postgresql+psycopg://user@db-host/search \\\n"
            "    python -m search.worker --study-name mnist-full --device cuda",
        ],
    )
    p.add_argument("--storage", default=default_storage(), help=storage_help())
    p.add_argument("--study-name", required=True)
    p.add_argument("--data-dir", default=None, help="default: $SEARCH_DATA_DIR or ./data")
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument(
        "--artifact-dir",
        help="learning curves, weights and checkpoints; default: artifacts/ beside an SQLite "
        "file, else study_db/artifacts",
    )
    p.add_argument(
        "--task",
        help="where this machine has the study's task file, if not at the path the study "
        "recorded (its source must be the same)",
    )
    p.add_argument(
        "--allow-task-change",
        action="store_true",
        help="run a task whose source differs from the study's; the change is recorded",
    )
    p.add_argument(
        "--index",
        type=non_negative_int,
        default=index_from_environment(),
        help="this worker's index: its sampler's seed is the study's plus it, so a run can be "
        "reproduced (default: $SLURM_ARRAY_TASK_ID or $JOB_COMPLETION_INDEX, else a random "
        "seed offset)",
    )
    p.add_argument("--quiet", action="store_true")
    return p


INDEX_ENV = ("SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX")  # SLURM arrays, Kubernetes jobs


def index_from_environment() -> int | None:
    """A SLURM array task's or an indexed Kubernetes job's index, where there is one."""
    found = next((os.environ[k] for k in INDEX_ENV if os.environ.get(k, "").isdigit()), None)
    return None if found is None else int(found)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def join() -> int:
        study = load_existing_study(args.storage, args.study_name, writes=True)
        host = HostOptions(
            data_dir=args.data_dir or "",
            device=str(resolve_device(args.device)),
            artifact_dir=args.artifact_dir or "",
            index=args.index,
            name=str(os.getpid() if args.index is None else args.index),
            task=args.task or "",
            quiet=args.quiet,
        )
        spec = spec_from_study(study, args.storage, host)
        if args.allow_task_change:  # record the change, then run as the study's own task
            task = load_task(args.task or spec.settings.task, "--task")
            check_task_source(study, task.source_hash, True, "--allow-task-change")
            spec = replace(spec, task_hash=task.source_hash)
        if spec.settings.precision == "auto" and not args.quiet:
            print(f"precision {spec.precision[1]}", file=sys.stderr)
        ran = work(spec, observe=Publisher)
        print(f"worker ran {ran} trials of {args.study_name}")
        return 0

    return guarded(join, args.debug, interrupted="interrupted: the running trial was marked FAIL")


if __name__ == "__main__":
    sys.exit(main())
