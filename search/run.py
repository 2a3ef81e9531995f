"""Run a study: ``python -m search.run --sampler grid`` runs the reference's one-factor grid.

Other samplers (``--sampler tpe`` and friends) explore the default space, a design's levels
(``--design full``) or a space file (``--space FILE.toml``). Results go to an Optuna database
(default ``sqlite:///study_db/mnist.db``); running the same command again resumes the study:
finished trials are kept, interrupted ones run again. ``--help`` lists the options
(``search.run_options``). Every option, the space and the data are checked before a study is
made, so a refused command leaves nothing behind.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

import optuna
from tqdm import tqdm

from search.cli import guarded
from search.engine.data import load
from search.engine.device import resolve_device
from search.run_options import build_parser, sampler_of, settings_from
from search.study import claims, runner, warm
from search.study.opening import open_study
from search.study.pool import default_workers, run_in_workers
from search.study.queries import trial_ids
from search.study.settings import choose_space, command_line, shape_space
from search.study.sqlite_files import is_new_sqlite
from search.study.storage import (
    STORAGE_ENV,
    check_writable_folder,
    default_storage,
    display_url,
)
from search.study.workers import HostOptions, data_config, spec_from_study, work
from search.views.publish import Publisher
from search.views.summary import nothing_to_run, study_summary

DEFAULT_SAMPLER_TRIALS = 50  # a sampler's budget when --n-trials is not given


def worker_command(storage: str, study_name: str) -> str:
    """The command that joins a worker to the study, as a user would type it."""
    words = ["python", "-m", "search.worker"]
    if storage != default_storage():  # else the worker's default is the same storage
        words += ["--storage", display_url(storage)]
    hint = "" if display_url(storage) == storage else f" (its password: ${STORAGE_ENV})"
    return shlex.join([*words, "--study-name", study_name]) + hint


def execute(args: argparse.Namespace, command: str) -> int:
    written = choose_space(sampler_of(args), args.design, args.space)
    settings = settings_from(args, written)
    space = shape_space(written, settings, f"--sampler {settings.sampler} with {written.name!r}")
    device = resolve_device(args.device)
    # Everything is checked before a study or a database exists: the sampler's packages, the
    # warm start, then the data and the space against it.
    settings.search(space)
    warm.check(args.storage, space, args.enqueue_baseline, args.warm_start)
    splits = load(data_config(settings, args.data_dir or ""), "cpu")
    space.check_batch_size(len(splits.train_x), f"space {space.name!r}")
    n_trials = args.n_trials or (None if space.is_grid else DEFAULT_SAMPLER_TRIALS)
    budget = runner.RunnerConfig(n_trials=n_trials, timeout=args.timeout)
    say = (lambda _msg: None) if args.quiet else (lambda msg: tqdm.write(msg, file=sys.stderr))
    if args.artifact_dir:
        check_writable_folder(Path(args.artifact_dir), "--artifact-dir")
    new = is_new_sqlite(args.storage)
    study = open_study(
        args.storage, args.study_name, settings, space, budget, command, args.allow_space_change
    )
    if new is not None:
        print(f"new database {new}", file=sys.stderr)  # a typo in a path shows at once
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
        print(
            f"study {study.study_name} is ready in {display_url(args.storage)}: {todo} trials "
            f"to run; start workers with {worker_command(args.storage, study.study_name)}"
        )
        return 0
    code = 0
    if not todo:
        say(nothing_to_run(study, spec.space, spec.runner))
    else:
        workers = args.workers or default_workers(device.type, todo)
        if workers > 1:
            del splits  # each worker loads its own: this process keeps no copy while they run
        elif device.type != "cpu":
            splits = load(spec.data, device)
        say(
            f"study {study.study_name}: {todo} trials to run on {device}"
            + (f" with {workers} workers" if workers > 1 else "")
            + (f"; warm start: {started}" if started else "")
        )
        # A bar redraws itself with carriage returns: on a terminal only, never into a log.
        quiet_bar = args.quiet or not sys.stderr.isatty()
        with tqdm(
            total=total,
            initial=total - todo,
            unit="trial",
            desc=study.study_name,
            disable=quiet_bar,
            file=sys.stderr,
        ) as bar:
            if workers == 1:
                say_line = lambda msg: tqdm.write(msg, file=sys.stderr)  # noqa: E731
                work(spec, Publisher, lambda _t: bar.update(1), say_line, splits)
            else:

                def progress() -> None:
                    bar.n = len(trial_ids(study, claims.DONE))  # one query, not every trial
                    bar.refresh()

                code = run_in_workers(study, spec, workers, progress, Publisher)
    print(f"study {study.study_name} in {display_url(args.storage)}")
    print(study_summary(study, spec.space, settings))
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
