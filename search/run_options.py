"""The options of ``python -m search.run`` and the study settings they give.

Every option is checked here, where it enters (argparse types, one line and exit code 2); the
settings a space file records in its ``[settings]`` table fill what the command leaves out.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from search.cli import Parser, positive_float, positive_int, seed_int
from search.engine.config import PRECISION_SETTINGS as PRECISIONS
from search.engine.datasets import DATASETS, DataConfig
from search.engine.device import DEVICES
from search.engine.history import JUDGES
from search.errors import UsageError
from search.study.space.samplers import DEFAULT_PRUNER, MULTI_OBJECTIVE, PRUNERS, SAMPLERS
from search.study.space.space import Space
from search.study.space.spacefile import DESIGNS
from search.study.storage.settings import (
    StudySettings,
    default_judge,
    parse_objectives,
    parse_task_objectives,
)
from search.study.storage.storage import default_storage, storage_help
from search.tasks.loading import Task

DEFAULT_SEED = 1  # the reference study's seed
DESCRIPTION = "Run a study: a grid, or a sampler's search, kept in an Optuna database."


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m search.run",
        description=DESCRIPTION,
        examples=[
            "python -m search.run --sampler grid",
            "python -m search.run --sampler grid --max-epochs 1 --train-limit 2000",
            "python -m search.run --sampler tpe --n-trials 100 --storage sqlite:///study_db/tpe.db",
            "python -m search.run --sampler nsga2 --objectives accuracy,seconds --n-trials 60",
        ],
    )
    for add in (_what, _where, _how, _budget, _start):
        add(p)
    return p


def _what(p: argparse.ArgumentParser) -> None:
    """What a trial trains, and what the study searches for it."""
    g = p.add_argument_group("what to search")
    g.add_argument(
        "--sampler",
        choices=list(SAMPLERS),
        help="default: grid (nsga2 with several --objectives)",
    )
    g.add_argument(
        "--pruner",
        choices=list(PRUNERS),
        help="default: none for grid, median for random/qmc/cmaes, hyperband for tpe/gp",
    )
    g.add_argument(
        "--design",
        choices=DESIGNS,
        help="built-in grid: ofat (15 points, default for grid) or full (2,187)",
    )
    g.add_argument(
        "--task",
        metavar="TASK",
        help="what a trial trains: mlp (the built-in MLP, default), a task file PATH.py, a "
        "module package.module[:name], or 'cmd:COMMAND {param} ...' (see search/task.py)",
    )
    g.add_argument(
        "--space",
        metavar="FILE.toml",
        help="a space file (see search/spaces/); default: the task's own, or for the MLP the "
        "ofat grid (grid) or the default space",
    )
    g.add_argument(
        "--objectives",
        help="the MLP: accuracy (default), or accuracy,seconds or accuracy,params for a Pareto "
        "search; a task: METRIC:maximize|minimize,... (default: the space's [objective], "
        "else the task's OBJECTIVE)",
    )


def _where(p: argparse.ArgumentParser) -> None:
    """Where the study, its artifacts and its data live, and the device."""
    g = p.add_argument_group("where")
    g.add_argument(
        "--study-name",
        help="default: DATASET-SPACE plus sampler and caps, e.g. mnist-ofat-e1-n2000",
    )
    g.add_argument("--storage", default=default_storage(), help=storage_help())
    g.add_argument("--dataset", choices=list(DATASETS), help=f"default: {DataConfig.dataset}")
    g.add_argument(
        "--artifact-dir",
        help="artifacts for optuna-dashboard; default: artifacts/ beside an SQLite file, "
        "else study_db/artifacts",
    )
    g.add_argument("--data-dir", help="holds MNIST/raw/...; default: $SEARCH_DATA_DIR or ./data")
    g.add_argument("--device", choices=DEVICES, default="auto")
    g.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="the matrix products' inputs: auto (bf16 where the device multiplies it fast: "
        "AVX512_BF16 or AMX, a bf16 GPU; else fp32), fp32 or bf16; weights, optimizer and "
        "losses stay fp32. Default: a resumed study's own, else fp32 for grid, auto for samplers",
    )


def _how(p: argparse.ArgumentParser) -> None:
    """What every trial of the study shares: the seed, its epochs, its data."""
    g = p.add_argument_group("how every trial runs")
    g.add_argument("--seed", type=seed_int, help=f"default: {DEFAULT_SEED}")
    g.add_argument(
        "--epochs",
        type=positive_int,
        help="every trial's epochs, where its schedule ends and the pruner's horizon "
        "(samplers; default: the space's, 15 for the default space)",
    )
    g.add_argument(
        "--max-epochs",
        type=positive_int,
        default=os.environ.get("SEARCH_MAX_EPOCHS") or None,
        help="cap every trial's epochs (quick look); default: $SEARCH_MAX_EPOCHS, else none",
    )
    g.add_argument(
        "--judge-epoch",
        choices=JUDGES,
        help="the epoch whose validation accuracy is a trial's objective; default: last "
        "(what the kept model scores), best for grid (the reference's rule)",
    )
    g.add_argument(
        "--train-limit",
        type=positive_int,
        default=os.environ.get("SEARCH_TRAIN_LIMIT") or None,
        help="use the first N training samples; default: $SEARCH_TRAIN_LIMIT, else all",
    )
    g.add_argument(
        "--val-size",
        type=positive_int,
        help=f"validation samples held out of the training set (default {DataConfig.val_size})",
    )


def _budget(p: argparse.ArgumentParser) -> None:
    """How much the study runs, in how many processes, and what it prints."""
    g = p.add_argument_group("budget and processes")
    g.add_argument(
        "--n-trials",
        type=positive_int,
        help="trial budget for the whole study (default: the whole grid; 50 else)",
    )
    g.add_argument("--timeout", type=positive_float, help="seconds of trial time for the study")
    out = g.add_mutually_exclusive_group()
    out.add_argument("--quiet", action="store_true", help="print only the summary")
    out.add_argument("--verbose", action="store_true", help="print every epoch")
    g.add_argument(
        "--workers",
        type=positive_int,
        help="worker processes on this machine, each with cores/N threads; default: one per "
        "core on the CPU when the study has more trials to run than cores, else 1",
    )


def _start(p: argparse.ArgumentParser) -> None:
    """Where a search starts, what a resume may accept, and a study made for workers."""
    g = p.add_argument_group("starting and resuming")
    g.add_argument(
        "--enqueue-baseline",
        action="store_true",
        help="run a known-good configuration (a dropout MLP recipe) first (samplers)",
    )
    g.add_argument(
        "--warm-start",
        metavar="STUDY",
        help="run the best points of another study in the same storage first (samplers)",
    )
    g.add_argument(
        "--allow-space-change",
        action="store_true",
        help="resume a study whose space file changed (ranges moved, parameters added or "
        "dropped); the change is recorded with the study",
    )
    g.add_argument(
        "--allow-task-change",
        action="store_true",
        help="resume a study whose task file changed since it was made; the change is "
        "recorded with the study",
    )
    g.add_argument(
        "--create-only",
        action="store_true",
        help="create the study (queue its grid, fetch the data) and leave the "
        "trials to workers (python -m search.worker)",
    )


def objectives_of(args: argparse.Namespace, space: Space, task: Task) -> tuple[str, ...]:
    """The study's objectives: the MLP's names (accuracy...), or a task's ``metric:direction``
    from --objectives, else the space's [objective], else the task's OBJECTIVE."""
    if task.built_in:
        return parse_objectives(args.objectives or "accuracy")
    if args.objectives:
        return parse_task_objectives(args.objectives)
    declared = space.objective or task.objective
    if not declared:
        raise UsageError(
            f"--task {task.ref}: no objective: add [objective] (metric = NAME, direction = "
            "'maximize' or 'minimize') to the space file, OBJECTIVE to the task, or give "
            "--objectives METRIC:maximize"
        )
    return tuple(f"{metric}:{direction}" for metric, direction in declared)


def sampler_of(args: argparse.Namespace, objectives: tuple[str, ...]) -> str:
    """The sampler a command means: --sampler, else nsga2 for several objectives, else grid."""
    return args.sampler or ("nsga2" if len(objectives) > 1 else "grid")


def settings_from(args: argparse.Namespace, space: Space, task: Task) -> StudySettings:
    """The study's settings: each option as given, else the space file's [settings] (what
    ``search.best`` recorded), else its default."""
    objectives = objectives_of(args, space, task)
    sampler = sampler_of(args, objectives)

    def given(name: str, default: Any) -> Any:
        value = getattr(args, name)
        return value if value is not None else space.settings.get(name, default)

    if len(objectives) > 1:
        if sampler not in MULTI_OBJECTIVE:
            raise UsageError(
                f"--sampler {sampler}: several objectives need one of {', '.join(MULTI_OBJECTIVE)}"
            )
        if args.pruner not in (None, "none"):
            raise UsageError("--pruner: Optuna cannot prune a study with several objectives")
    pruner = args.pruner or ("none" if len(objectives) > 1 else DEFAULT_PRUNER[sampler])
    if args.epochs is not None and sampler == "grid":
        raise UsageError("--epochs: a grid runs its points' epochs; cap them with --max-epochs")
    return StudySettings(
        dataset=given("dataset", DataConfig.dataset),
        space=space.name,
        sampler=sampler,
        pruner=pruner,
        objectives=objectives,
        seed=given("seed", DEFAULT_SEED),
        max_epochs=args.max_epochs,
        train_limit=given("train_limit", None),
        val_size=given("val_size", DataConfig.val_size),
        epochs=args.epochs,
        judge_epoch=given("judge_epoch", default_judge(sampler)),
        task=task.ref,
        precision=given("precision", None),  # None: the study's own, else the default
    )
