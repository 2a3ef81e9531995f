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

from search.cli import Parser, guarded, positive_float, positive_int
from search.engine.data import DATASETS, DataConfig, load
from search.engine.device import DEVICES, resolve_device
from search.engine.history import JUDGES
from search.errors import UsageError
from search.study import claims, runner, warm
from search.study.pool import default_workers, run_in_workers
from search.study.queries import trial_ids
from search.study.samplers import DEFAULT_PRUNER, MULTI_OBJECTIVE, PRUNERS, SAMPLERS
from search.study.settings import (
    StudySettings,
    command_line,
    default_judge,
    open_study,
    parse_objectives,
    resolve_space,
)
from search.study.space import DESIGNS
from search.study.storage import default_storage, display_url, storage_help
from search.study.workers import HostOptions, spec_from_study, work
from search.views.publish import Publisher
from search.views.summary import study_summary

DEFAULT_SAMPLER_TRIALS = 50  # a sampler's budget when --n-trials is not given


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m search.run", description=__doc__.splitlines()[0])
    p.add_argument(
        "--sampler",
        choices=list(SAMPLERS),
        help="default: grid (nsga2 with several --objectives)",
    )
    p.add_argument(
        "--pruner",
        choices=list(PRUNERS),
        help="default: none for grid, median for random/qmc/cmaes, hyperband for tpe/gp",
    )
    p.add_argument(
        "--design",
        choices=DESIGNS,
        help="built-in grid: ofat (15 points, default for grid) or full (2,187)",
    )
    p.add_argument("--space", metavar="FILE.toml", help="a space file (see search/spaces/)")
    p.add_argument(
        "--objectives",
        default="accuracy",
        help="accuracy, or accuracy,seconds or accuracy,params for a Pareto search",
    )
    p.add_argument(
        "--study-name",
        help="default: DATASET-SPACE plus sampler and caps, e.g. mnist-ofat-e1-n2000",
    )
    p.add_argument("--storage", default=default_storage(), help=storage_help())
    p.add_argument("--dataset", choices=list(DATASETS), default=DataConfig.dataset)
    p.add_argument(
        "--artifact-dir",
        help="artifacts for optuna-dashboard; default: artifacts/ beside an SQLite file, "
        "else study_db/artifacts",
    )
    p.add_argument("--data-dir", help="holds MNIST/raw/...; default: $SEARCH_DATA_DIR or ./data")
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--epochs",
        type=positive_int,
        help="every trial's epochs, where its schedule ends and the pruner's horizon "
        "(samplers; default: the space's, 15 for the default space)",
    )
    p.add_argument("--max-epochs", type=positive_int, help="cap every trial's epochs (quick look)")
    p.add_argument(
        "--judge-epoch",
        choices=JUDGES,
        help="the epoch whose validation accuracy is a trial's objective; default: last "
        "(what the kept model scores), best for grid (the reference's rule)",
    )
    p.add_argument("--train-limit", type=positive_int, help="use the first N training samples")
    p.add_argument(
        "--val-size",
        type=positive_int,
        default=DataConfig.val_size,
        help=f"validation samples held out of the training set (default {DataConfig.val_size})",
    )
    p.add_argument(
        "--n-trials",
        type=positive_int,
        help="trial budget for the whole study (default: the whole grid; 50 else)",
    )
    p.add_argument("--timeout", type=positive_float, help="seconds of trial time for the study")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--quiet", action="store_true", help="print only the summary")
    out.add_argument("--verbose", action="store_true", help="print every epoch")
    p.add_argument(
        "--workers",
        type=positive_int,
        help="worker processes on this machine, each with cores/N threads; default: one per "
        "core on the CPU when the study has more trials to run than cores, else 1",
    )
    p.add_argument(
        "--enqueue-baseline",
        action="store_true",
        help="run a known-good configuration (a dropout MLP recipe) first (samplers)",
    )
    p.add_argument(
        "--warm-start",
        metavar="STUDY",
        help="run the best points of another study in the same storage first (samplers)",
    )
    p.add_argument(
        "--create-only",
        action="store_true",
        help="create the study (queue its grid, fetch the data) and leave the "
        "trials to workers (python -m search.worker)",
    )
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
    if args.epochs is not None and sampler == "grid":
        raise UsageError("--epochs: a grid runs its points' epochs; cap them with --max-epochs")
    return StudySettings(
        dataset=args.dataset,
        space=space_name,
        sampler=sampler,
        pruner=pruner,
        objectives=objectives,
        seed=args.seed,
        max_epochs=args.max_epochs,
        train_limit=args.train_limit,
        val_size=args.val_size,
        epochs=args.epochs,
        judge_epoch=args.judge_epoch or default_judge(sampler),
    )


def execute(args: argparse.Namespace, command: str) -> int:
    draft = settings_from(args, "")
    space = resolve_space(draft, args.design, args.space)
    settings = settings_from(args, space.name)
    device = resolve_device(args.device)
    n_trials = args.n_trials or (None if space.is_grid else DEFAULT_SAMPLER_TRIALS)
    budget = runner.RunnerConfig(n_trials=n_trials, timeout=args.timeout)
    study = open_study(args.storage, args.study_name, settings, space, budget, command)
    host = HostOptions(
        data_dir=args.data_dir or "",
        device=str(device),
        artifact_dir=args.artifact_dir or "",
        verbose=args.verbose,
        quiet=args.quiet,
    )
    spec = spec_from_study(study, args.storage, host)  # what every worker of the study runs
    if spec.space.is_grid:
        claims.enqueue_missing(
            study, spec.space, spec.runner.max_retries, spec.runner.queue_window
        )
    started = warm.prepare(study, spec.space, args.enqueue_baseline, args.warm_start)
    total, todo = runner.planned(study, spec.space, spec.runner)
    if args.create_only:
        load(spec.data, "cpu")  # downloads it once, before any worker starts
        print(
            f"study {study.study_name} is ready in {display_url(args.storage)}: {todo} trials "
            "to run; "
            f"start workers with python -m search.worker --storage URL --study-name "
            f"{study.study_name}"
        )
        return 0
    say = (lambda _msg: None) if args.quiet else (lambda msg: tqdm.write(msg, file=sys.stderr))
    code = 0
    if todo:
        # Load (and so check) the data before any progress is drawn. Workers load their own,
        # so then this check stays on the CPU: no GPU memory held by a process that trains none.
        workers = args.workers or default_workers(device.type, todo)
        splits = load(spec.data, device) if workers == 1 else None
        if splits is None:
            load(spec.data, "cpu")
        say(
            f"study {study.study_name}: {todo} trials to run on {device}"
            + (f" with {workers} workers" if workers > 1 else "")
            + (f"; warm start: {started}" if started else "")
        )
        with tqdm(
            total=total,
            initial=total - todo,
            unit="trial",
            desc=study.study_name,
            disable=args.quiet,
            file=sys.stderr,
        ) as bar:
            if workers == 1:
                work(spec, Publisher, on_done=lambda _t: bar.update(1), say=say, splits=splits)
            else:

                def progress() -> None:
                    bar.n = len(trial_ids(study, claims.DONE))  # one query, not every trial
                    bar.refresh()

                code = run_in_workers(study, spec, workers, progress, Publisher)
    print(f"study {study.study_name} in {display_url(args.storage)}")
    print(study_summary(study, spec.space, settings.objectives))
    if code:
        print(f"error: a worker exited with code {code} (its message is above)", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if not args.verbose:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.captureWarnings(True)
    return guarded(
        lambda: execute(args, command_line("search.run", argv)),
        args.debug,
        interrupted="interrupted: the running trial was marked FAIL; "
        "run the same command again to resume",
    )


if __name__ == "__main__":
    sys.exit(main())
