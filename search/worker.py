"""Workers: processes that claim a study's trials and run them, here or on other machines.

    python -m search.worker --storage URL --study-name NAME [--data-dir DIR] [--device auto]
joins an existing study from any machine: its space and settings come from the database.
``python -m search.run --workers N`` starts N of them on this machine.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import optuna
import torch

from search import runner
from search.cli import Parser, resolve_device
from search.data import DataConfig, Splits, default_data_dir, load
from search.errors import SearchError
from search.objective import Objective, ObjectiveConfig
from search.publish import Publisher, artifact_dir_for
from search.samplers import make_pruner, make_sampler
from search.space import Space, parse_space
from search.storage import load_existing_study
from search.summary import pct, rows_for_trials

POLL_S = 1.0  # how often the parent redraws the progress of its workers
INTERRUPT_GRACE_S = 5.0  # how long the parent waits for workers to stop on their own


@dataclass(frozen=True)
class WorkerSpec:
    """Everything one worker needs; picklable, so it can start a process."""

    storage: str
    study_name: str
    space: Space
    data: DataConfig
    objective: ObjectiveConfig
    runner: runner.RunnerConfig
    sampler: str
    pruner: str
    device: str = "cpu"
    artifact_dir: str = ""
    threads: int | None = None  # torch threads; None keeps torch's default (all cores)
    worker_id: int | None = None  # None for the CLI's own process
    verbose: bool = False
    quiet: bool = False


def open_as_worker(spec: WorkerSpec) -> optuna.Study:
    study = load_existing_study(spec.storage, spec.study_name)
    # Each worker seeds its sampler apart, or they would all suggest the same points.
    seed = spec.objective.seed + (spec.worker_id or 0)
    study.sampler = make_sampler(spec.sampler, seed)
    study.pruner = make_pruner(spec.pruner, spec.objective.max_epochs or 25)
    return study


def work(
    spec: WorkerSpec,
    on_done: Callable[[optuna.trial.FrozenTrial], None] | None = None,
    say: Callable[[str], None] | None = None,
    splits: Splits | None = None,
) -> int:
    """Run trials of the study in this process until there is none left; return how many."""
    if spec.threads:
        torch.set_num_threads(spec.threads)
    prefix = "" if spec.worker_id is None else f"[worker {spec.worker_id}] "
    say = say or (lambda msg: print(prefix + msg, file=sys.stderr, flush=True))
    if spec.quiet:
        say = lambda _msg: None  # noqa: E731
    study = open_as_worker(spec)
    splits = splits or load(spec.data, torch.device(spec.device))
    artifacts = Path(spec.artifact_dir) if spec.artifact_dir else artifact_dir_for(spec.storage)
    publisher = Publisher(study, spec.space, artifacts, warn=say)
    objective = Objective(
        spec.space,
        splits,
        spec.objective,
        log=say if spec.verbose else None,
        after_fit=publisher.after_fit,
    )

    def done(t: optuna.trial.FrozenTrial) -> None:
        publisher.after_trial(t)
        row = rows_for_trials([t], spec.space)[0]
        say(
            f"trial {t.number} {row['params']}: {t.state.name} val {pct(row['val_acc'])} "
            f"test {pct(row['test_acc'])} {row['seconds'] or 0:.1f} s {row['note']}".rstrip()
        )
        if on_done is not None:
            on_done(t)

    return runner.run(study, spec.space, objective, spec.runner, done, say)


def _entry(spec: WorkerSpec) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        work(spec)
    except KeyboardInterrupt:
        sys.exit(130)
    except SearchError as e:
        print(f"[worker {spec.worker_id}] error: {e}", file=sys.stderr, flush=True)
        sys.exit(e.exit_code)


def split_devices(device: str, n: int) -> list[str]:
    """Worker i gets cuda:(i mod k) with k GPUs; every worker shares a CPU or MPS device."""
    if device.startswith("cuda") and torch.cuda.device_count() > 1:
        return [f"cuda:{i % torch.cuda.device_count()}" for i in range(n)]
    return [device] * n


def run_local_workers(spec: WorkerSpec, n: int, progress: Callable[[], None]) -> int:
    """Start n worker processes on this machine, wait for them; Ctrl-C stops them all."""
    threads = max(1, (os.cpu_count() or 1) // n)
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(
            target=_entry,
            args=(replace(spec, worker_id=i, device=d, threads=threads),),
            daemon=False,
        )
        for i, d in enumerate(split_devices(spec.device, n))
    ]
    for p in procs:
        p.start()
    try:
        while sum([p.is_alive() for p in procs]):  # every one polled, so the dead are reaped
            progress()
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        # A terminal's Ctrl-C reaches the workers too; a kill -INT of this process alone does
        # not, so whoever is still running after a grace period is told.
        for p in procs:
            p.join(timeout=INTERRUPT_GRACE_S)
        for p in procs:
            if p.is_alive():
                os.kill(p.pid, signal.SIGINT)
        for p in procs:
            p.join()
        raise
    for p in procs:
        p.join()
    progress()
    return max((p.exitcode or 0) for p in procs)


def spec_from_study(
    study: optuna.Study, storage: str, data_dir: str | None, device: str
) -> WorkerSpec:
    """A worker for an existing study, from what the study recorded when it was made."""
    s = study.user_attrs.get("settings")
    text = study.user_attrs.get("space_toml")
    if not s or not text:
        raise SearchError(
            f"study {study.study_name!r} was not made by search.run; a worker cannot join it"
        )
    space = parse_space(text, f"the space stored with {study.study_name!r}")
    space = space.as_grid("stored space") if s["sampler"] == "grid" else space.without_grid()
    return WorkerSpec(
        storage=storage,
        study_name=study.study_name,
        space=space.capped(s["max_epochs"]),
        data=DataConfig(
            dataset=s["dataset"],
            data_dir=data_dir or default_data_dir(),
            val_size=s["val_size"],
            train_limit=s["train_limit"],
            seed=s["seed"],
        ),
        objective=ObjectiveConfig(s["seed"], s["max_epochs"], tuple(s["objectives"])),
        runner=runner.RunnerConfig(),
        sampler=s["sampler"],
        pruner=s["pruner"],
        device=device,
    )


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="python -m search.worker", description=__doc__.splitlines()[0])
    p.add_argument("--storage", required=True)
    p.add_argument("--study-name", required=True)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = load_existing_study(args.storage, args.study_name)
        spec = spec_from_study(
            study, args.storage, args.data_dir, str(resolve_device(args.device))
        )
        ran = work(replace(spec, quiet=args.quiet, worker_id=os.getpid()))
    except SearchError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted: the running trial was marked FAIL", file=sys.stderr)
        return 130
    print(f"worker ran {ran} trials of {args.study_name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
