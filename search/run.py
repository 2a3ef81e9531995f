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
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import torch
from tqdm import tqdm

from search.cli import guarded
from search.engine.device import resolve_device
from search.errors import UsageError
from search.run_options import build_parser, sampler_of, settings_from
from search.study.queue import claims
from search.study.running.budget import RunnerConfig, planned
from search.study.running.failures import repeated_failure
from search.study.running.pool import default_workers, run_in_workers
from search.study.running.workers import (
    HostOptions,
    Loaded,
    WorkerSpec,
    load_data,
    spec_from_study,
    work,
)
from search.study.space import warm
from search.study.space.space import Fixed, Space
from search.study.storage.opening import StudyPlan, open_study
from search.study.storage.settings import (
    StudySettings,
    check_task_space,
    choose_space,
    command_line,
    parse_objectives,
    shape_space,
)
from search.study.storage.sqlite_files import is_new_sqlite
from search.study.storage.storage import check_writable_folder, display_url, parse_url
from search.study.storage.trials import state_counts
from search.tasks.loading import Task, load_task
from search.views.hints import next_steps, worker_command
from search.views.publish import Publisher
from search.views.summary import nothing_to_run, study_summary

DEFAULT_SAMPLER_TRIALS = 50  # a sampler's budget when --n-trials is not given
# A study's name becomes part of file names (its trials' folder, a report's): longer names
# fail there, after the study exists.
MAX_NAME_CHARS = 200


@dataclass(frozen=True)
class Checked:
    """A command's study, checked before anything exists: its task, space and settings, the
    device, and the data loaded once here (the check that it loads, and a lone worker's)."""

    task: Task
    space: Space
    settings: StudySettings
    device: torch.device
    data: Any


def check(args: argparse.Namespace) -> Checked:
    """Every option, the task, the space, the sampler's packages, the warm start and the
    data, checked before a study or a database exists: a refused command leaves nothing."""
    parse_url(args.storage)  # a mistyped URL is said before any data is read
    task = load_task(args.task)
    objectives = parse_objectives(args.objectives or "accuracy") if task.built_in else ()
    written = choose_space(sampler_of(args, objectives), args.design, args.space, task)
    settings = settings_from(args, written, task)
    space = shape_space(written, settings, f"--sampler {settings.sampler} with {written.name!r}")
    check_task_space(task, space)
    device = resolve_device(args.device)
    settings.search(space)
    warm.check(args.storage, space, args.enqueue_baseline, args.warm_start)
    if args.artifact_dir:
        check_writable_folder(Path(args.artifact_dir), "--artifact-dir")
    if len(args.study_name or "") > MAX_NAME_CHARS:
        raise UsageError(
            f"--study-name: expected at most {MAX_NAME_CHARS} characters, got "
            f"{len(args.study_name)}; choose a shorter name"
        )
    host = HostOptions(data_dir=args.data_dir or "")
    probe = WorkerSpec(args.storage, "", settings, space, RunnerConfig(), host)
    data = load_data(task, probe, "cpu")
    if task.built_in:
        space.check_batch_size(len(data.train_x), f"space {space.name!r}")
    return Checked(task, space, settings, device, data)


def budget_of(args: argparse.Namespace, space: Space) -> int | None:
    """The trial budget: --n-trials, else the grid, else the sampler's default; a sampler
    on a space of one point runs it once (every trial would be the same)."""
    if space.is_grid:
        return args.n_trials
    if all(isinstance(p, Fixed) for p in space.params.values()):
        print(
            f"note: space {space.name!r} has one point: it runs once (for a point run once "
            "per seed or a grid, use --sampler grid)",
            file=sys.stderr,
        )
        return 1
    return args.n_trials or DEFAULT_SAMPLER_TRIALS


def open_planned(args: argparse.Namespace, checked: Checked, command: str) -> optuna.Study:
    """The study, made or resumed (``search.study.storage.opening``), its grid and warm start
    queued."""
    n_trials = budget_of(args, checked.space)
    plan = StudyPlan(
        name=args.study_name,
        settings=checked.settings,
        space=checked.space,
        budget=RunnerConfig(n_trials=n_trials, timeout=args.timeout),
        command=command,
        task_hash=checked.task.source_hash,
        allow_space_change=args.allow_space_change,
        allow_task_change=args.allow_task_change,
    )
    new = is_new_sqlite(args.storage)
    study = open_study(args.storage, plan)
    if new is not None:
        print(f"new database {new}", file=sys.stderr)  # a typo in a path shows at once
    return study


def execute(args: argparse.Namespace, command: str) -> int:
    checked = check(args)
    study = open_planned(args, checked, command)
    host = HostOptions(
        data_dir=args.data_dir or "",
        device=str(checked.device),
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
    total, todo = planned(study, spec.space, spec.runner)
    if args.create_only:
        print(
            f"study {study.study_name} is ready in {display_url(args.storage)}: {todo} trials "
            f"to run; start workers with {worker_command(args.storage, study.study_name)}"
        )
        return 0
    say = (lambda _msg: None) if args.quiet else (lambda msg: tqdm.write(msg, file=sys.stderr))
    code = 0
    if not todo:
        say(nothing_to_run(study, spec.space, spec.runner))
    else:
        code = launch(args, study, spec, checked, (total, todo), started, say)
    print(f"study {study.study_name} in {display_url(args.storage)}")
    print(study_summary(study, spec.space, spec.settings))
    if code:
        stop = repeated_failure(study)  # the reason, as one process would have said it
        said = stop or f"a worker exited with code {code} (its message is above)"
        print(f"error: {said}", file=sys.stderr)
        return code
    if all_failed(study):
        print("error: every trial of the study failed (the reasons are above)", file=sys.stderr)
        return 1
    if not args.quiet:
        print(next_steps(args.storage, study.study_name))
    return 0


def all_failed(study: optuna.Study) -> bool:
    """Trials ended, and each of them failed: nothing was learned."""
    counts = state_counts(study)
    return bool(counts["FAIL"]) and not counts["COMPLETE"] and not counts["PRUNED"]


def launch(
    args: argparse.Namespace,
    study: optuna.Study,
    spec: WorkerSpec,
    checked: Checked,
    plan: tuple[int, int],
    started: str,
    say: Callable[[str], None],
) -> int:
    """Run the study's trials: here, or in local worker processes; returns their exit code."""
    total, todo = plan
    device = checked.device
    workers = args.workers or default_workers(device.type, todo)
    loaded = None
    if workers == 1:  # this process is the worker: the data it loaded serves, on its device
        data = checked.data if device.type == "cpu" else load_data(checked.task, spec)
        loaded = Loaded(checked.task, data)
    if spec.settings.precision == "auto":  # said once, here: the workers decide alike
        say(f"precision {spec.precision[1]}")
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
            work(spec, Publisher, lambda _t: bar.update(1), say_line, loaded)
            return 0

        def progress() -> None:
            bar.n = len(study.get_trials(deepcopy=False, states=claims.DONE))
            bar.refresh()

        return run_in_workers(study, spec, workers, progress, Publisher)


def caps_from_environment(argv: list[str]) -> list[str]:
    """The caps ``$SEARCH_MAX_EPOCHS`` and ``$SEARCH_TRAIN_LIMIT`` gave this command, as the
    options they stand for: the study records the command that reproduces it."""
    caps = {"--max-epochs": "SEARCH_MAX_EPOCHS", "--train-limit": "SEARCH_TRAIN_LIMIT"}
    given = {a.partition("=")[0] for a in argv}
    return [
        word
        for flag, name in caps.items()
        if flag not in given and os.environ.get(name)
        for word in (flag, os.environ[name])
    ]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if not args.verbose:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.captureWarnings(True)
    return guarded(
        lambda: execute(args, command_line("search.run", [*argv, *caps_from_environment(argv)])),
        args.debug,
        interrupted="interrupted: the running trial was marked FAIL; "
        "run the same command again to resume",
    )


if __name__ == "__main__":
    sys.exit(main())
