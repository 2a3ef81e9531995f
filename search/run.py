"""Run a study: ``python -m search.run --sampler grid`` runs the reference's one-factor grid.

Other samplers (``--sampler tpe`` and friends) explore the default space, a design's levels
(``--design full``) or a space file (``--space FILE.toml``). Results go to an Optuna database
(default ``sqlite:///study_db/mnist.db``); running the same command again resumes the study:
finished trials are kept, interrupted ones run again. ``--help`` lists the options.
"""

from __future__ import annotations

import argparse
import logging
import sys

import optuna
from tqdm import tqdm

from search import claims, runner
from search import data as data_mod
from search.cli import Parser, positive_float, positive_int, resolve_device
from search.errors import SearchError, UsageError
from search.objective import ObjectiveConfig
from search.samplers import DEFAULT_PRUNER, MULTI_OBJECTIVE, PRUNERS, SAMPLERS
from search.space import DESIGNS, Space
from search.storage import DEFAULT_STORAGE, trial_ids
from search.study import StudySettings, open_study, parse_objectives, resolve_space
from search.summary import format_table, pareto_rows, summary_rows
from search.worker import WorkerSpec, run_local_workers, work

EXIT_INTERRUPTED = 130  # the shell's convention for SIGINT
DEFAULT_SAMPLER_TRIALS = 50  # a sampler's budget when --n-trials is not given


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m search.run", description=__doc__.splitlines()[0])
    p.add_argument(
        "--sampler",
        choices=list(SAMPLERS),
        default=None,
        help="default: grid (nsga2 with several --objectives)",
    )
    p.add_argument(
        "--pruner",
        choices=list(PRUNERS),
        default=None,
        help="default: none for grid, median for random/qmc/cmaes, hyperband for tpe/gp",
    )
    p.add_argument(
        "--design",
        choices=DESIGNS,
        default=None,
        help="built-in grid: ofat (15 points, default for grid) or full (2,187)",
    )
    p.add_argument(
        "--space",
        default=None,
        metavar="FILE.toml",
        help="a space file (see search/spaces/*.toml)",
    )
    p.add_argument(
        "--objectives",
        default="accuracy",
        help="accuracy, or accuracy,seconds or accuracy,params for a Pareto search",
    )
    p.add_argument(
        "--study-name",
        default=None,
        help="default: DATASET-SPACE plus sampler and caps, e.g. mnist-ofat-e1-n2000",
    )
    p.add_argument("--storage", default=DEFAULT_STORAGE, help=f"default: {DEFAULT_STORAGE}")
    p.add_argument("--dataset", choices=list(data_mod.DATASETS), default="mnist")
    p.add_argument(
        "--artifact-dir",
        default=None,
        help="artifacts for optuna-dashboard; default: artifacts/ beside an SQLite file, "
        "else study_db/artifacts",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="root holding MNIST/raw/...; default: $SEARCH_DATA_DIR or ./data",
    )
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--max-epochs",
        type=positive_int,
        default=None,
        help="cap every trial's epochs (for a quick look)",
    )
    p.add_argument(
        "--train-limit",
        type=positive_int,
        default=None,
        help="use only the first N training samples",
    )
    p.add_argument(
        "--val-size",
        type=positive_int,
        default=5000,
        help="validation samples held out of the training set (default 5000)",
    )
    p.add_argument(
        "--n-trials",
        type=positive_int,
        default=None,
        help="trial budget for the whole study (default: the whole grid; 50 else)",
    )
    p.add_argument(
        "--timeout",
        type=positive_float,
        default=None,
        help="seconds of trial time for the whole study",
    )
    out = p.add_mutually_exclusive_group()
    out.add_argument("--quiet", action="store_true", help="print only the summary")
    out.add_argument("--verbose", action="store_true", help="print every epoch")
    p.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="worker processes on this machine (each gets cores/N threads)",
    )
    p.add_argument(
        "--create-only",
        action="store_true",
        help="create the study (queue its grid, fetch the data) and leave the "
        "trials to workers (python -m search.worker)",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def settings_from(args: argparse.Namespace, space_name: str) -> StudySettings:
    objectives = parse_objectives(args.objectives)
    sampler = args.sampler or ("nsga2" if len(objectives) > 1 else "grid")
    if len(objectives) > 1:
        if sampler not in MULTI_OBJECTIVE + ("grid",):
            raise UsageError(
                f"--sampler {sampler}: several objectives need one of {', '.join(MULTI_OBJECTIVE)}"
            )
        if args.pruner not in (None, "none"):
            raise UsageError("--pruner: Optuna cannot prune a study with several objectives")
    pruner = args.pruner or ("none" if len(objectives) > 1 else DEFAULT_PRUNER[sampler])
    return StudySettings(
        args.dataset,
        space_name,
        sampler,
        pruner,
        objectives,
        args.seed,
        args.max_epochs,
        args.train_limit,
        args.val_size,
    )


def run_in_workers(study: optuna.Study, space: Space, spec: WorkerSpec, n: int, bar: tqdm) -> None:
    """n local worker processes. Between rounds this process fails the trials of workers that
    died (SIGKILL, out of memory) and requeues failed grid points that have retries left."""

    def progress() -> None:
        bar.n = len(trial_ids(study, claims.DONE))  # one query, not every trial's record
        bar.refresh()

    for _ in range(spec.runner.max_retries + 1):
        run_local_workers(spec, n, progress)
        if not space.is_grid or not runner.recover(study, space, spec.runner):
            break


def execute(args: argparse.Namespace) -> int:
    draft = settings_from(args, "")
    space = resolve_space(draft.sampler, args.design, args.space, args.max_epochs)
    settings = settings_from(args, space.name)
    device = resolve_device(args.device)
    study = open_study(args.storage, args.study_name, settings, space)
    say = (lambda _msg: None) if args.quiet else (lambda msg: tqdm.write(msg, file=sys.stderr))
    n_trials = args.n_trials or (None if space.is_grid else DEFAULT_SAMPLER_TRIALS)
    cfg = runner.RunnerConfig(n_trials=n_trials, timeout=args.timeout)
    if space.is_grid:
        claims.enqueue_missing(study, space, cfg.max_retries, cfg.queue_window)
    total, todo = runner.planned(study, space, cfg)
    spec = WorkerSpec(
        storage=args.storage,
        study_name=study.study_name,
        space=space,
        data=data_mod.DataConfig(
            dataset=args.dataset,
            data_dir=args.data_dir or data_mod.default_data_dir(),
            val_size=args.val_size,
            train_limit=args.train_limit,
            seed=args.seed,
        ),
        objective=ObjectiveConfig(args.seed, args.max_epochs, settings.objectives),
        runner=cfg,
        sampler=settings.sampler,
        pruner=settings.pruner,
        device=str(device),
        artifact_dir=args.artifact_dir or "",
        verbose=args.verbose,
        quiet=args.quiet,
    )
    if args.create_only:
        data_mod.load(spec.data, "cpu")  # downloads it once, before any worker starts
        print(
            f"study {study.study_name} is ready in {args.storage}: {todo} trials to run; "
            f"start workers with python -m search.worker --storage URL --study-name "
            f"{study.study_name}"
        )
        return 0
    if todo:
        # Load (and so check) the data before any progress is drawn. Workers load their own,
        # so then this check stays on the CPU: no GPU memory held by a process that trains none.
        splits = data_mod.load(spec.data, device if args.workers == 1 else "cpu")
        if args.workers > 1:
            splits = None
        say(
            f"study {study.study_name}: {todo} trials to run on {device}"
            + (f" with {args.workers} workers" if args.workers > 1 else "")
        )
        with tqdm(
            total=total,
            initial=total - todo,
            unit="trial",
            desc=study.study_name,
            disable=args.quiet,
            file=sys.stderr,
        ) as bar:
            if args.workers == 1:
                work(spec, on_done=lambda _t: bar.update(1), say=say, splits=splits)
            else:
                run_in_workers(study, space, spec, args.workers, bar)
    print(f"study {study.study_name} in {args.storage}")
    label = "differs from baseline" if space.is_grid else "parameters"
    if len(settings.objectives) > 1:
        print(f"Pareto front ({', '.join(settings.objectives)}):")
        print(format_table(pareto_rows(study, space), label, extra=settings.objectives[1]))
    else:
        print(format_table(summary_rows(study, space), label))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.verbose:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.captureWarnings(True)
    try:
        return execute(args)
    except SearchError as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(
            "interrupted: the running trial was marked FAIL; run the same command again to resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
