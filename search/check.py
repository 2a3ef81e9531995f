"""Check that a task resumes exactly: train it straight through, then stopped and resumed.

    python -m search.check --task path/to/task.py [--space FILE.toml] [--epochs 3]

It trains one small configuration of the space (its ``[baseline]``, else a fixed value, the
first choice, the middle of a range) twice in this process: straight through, and stopped
right after epoch 1's checkpoint, then resumed from it as a study resumes an interrupted
trial. Every reported metric, epoch by epoch, and the returned metrics must be equal bit for
bit (timing metrics aside). Prints the configuration, how long loading the data takes against
an epoch, and a verdict line: ``resume is exact`` (exit code 0) or ``resume differs: ...`` with
the likely causes (exit code 1). A task that never reports or checkpoints, or that raises, is
one line and exit code 1.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

from search.cli import Parser, guarded, positive_int, seed_int
from search.engine.datasets import default_data_dir
from search.engine.device import DEVICES, resolve_device
from search.errors import UsageError
from search.study.space.spacefile import load_space
from search.task import DataContext
from search.tasks.checking import (
    FINDINGS,
    STOP_EPOCH,
    Difference,
    Outcome,
    check_task,
    epoch_budget,
    pick_point,
)
from search.tasks.loading import Task, load_task

TRAIN_LIMIT = 2000  # training examples at most by default: a check is quick
DEFAULT_SEED = 1
WIDTH = 99  # causes are wrapped to this many characters


def at_least_two(text: str) -> int:
    value = int(text) if text.strip().isdigit() else 0
    if value < STOP_EPOCH + 1:
        raise argparse.ArgumentTypeError(
            f"expected a whole number from {STOP_EPOCH + 1} (the check stops after epoch "
            f"{STOP_EPOCH} and resumes), got {text!r}"
        )
    return value


def build_parser() -> Parser:
    p = Parser(
        prog="python -m search.check",
        description=__doc__.splitlines()[0],
        examples=[
            "python -m search.check --task examples/mnist_cnn.py",
            "python -m search.check --task my_task.py --space my_space.toml --epochs 3",
        ],
    )
    p.add_argument("--task", required=True, help="a task file (path/to/task.py) or module")
    p.add_argument("--space", help="its space file; default: the task's own (NAME.toml)")
    p.add_argument("--epochs", type=at_least_two, default=3, help="epochs of the straight run")
    p.add_argument(
        "--train-limit",
        type=positive_int,
        help=f"training examples at most; default: {TRAIN_LIMIT} or the space's, if fewer",
    )
    p.add_argument("--seed", type=seed_int, help=f"default: the space's, else {DEFAULT_SEED}")
    p.add_argument("--data-dir", help="where the data is; default: $SEARCH_DATA_DIR or ./data")
    p.add_argument("--device", choices=DEVICES, default="auto")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return guarded(lambda: check(args), args.debug)


def check(args: argparse.Namespace) -> int:
    task = load_task(args.task)
    space = load_space(space_file(task, args.space), open_=True)
    params = pick_point(space, args.epochs)
    epochs = epoch_budget(params, args.epochs)
    seed = args.seed if args.seed is not None else space.settings.get("seed", DEFAULT_SEED)
    limit = args.train_limit or min(TRAIN_LIMIT, space.settings.get("train_limit", TRAIN_LIMIT))
    device = resolve_device(args.device)
    shown = ", ".join(f"{k}={v}" for k, v in params.items())
    print(f"config: {shown}; {epochs} epochs, seed {seed}, train limit {limit}, on {device}")
    sys.stdout.flush()  # before the training, which takes a while
    data_ctx = DataContext(
        seed=seed,
        device=device,
        data_dir=Path(args.data_dir or default_data_dir()),
        train_limit=limit,
        settings=dict(space.settings),
    )
    with tempfile.TemporaryDirectory(prefix="search-check-") as folder:
        outcome = check_task(task, params, epochs, data_ctx, Path(folder))
    print(data_line(task, outcome.load_seconds, outcome.epoch_seconds))
    for line in verdict(outcome, device.type):
        print(line)
    return 0 if outcome.exact else 1


def space_file(task: Task, given: str | None) -> Path:
    if given:
        return Path(given)
    if task.space_file is None:
        raise UsageError(
            f"--task {task.ref}: no space file; give --space FILE.toml, put {task.name}.toml "
            "beside the task, or name one in it with SPACE = 'FILE.toml'"
        )
    return task.space_file


def seconds(value: float) -> str:
    return f"{value:.1f} s" if value >= 1 else f"{value:.2g} s"


def data_line(task: Task, load_seconds: float, epoch_seconds: float) -> str:
    if task.load_data is None:
        return "data: no load_data (data that train reads itself is read again in every trial)"
    epoch = f"an epoch ({seconds(epoch_seconds)})"
    ratio = load_seconds / epoch_seconds if epoch_seconds > 0 else 0.0
    if ratio <= 1:
        share = f"{ratio:.0%}" if ratio >= 0.01 else "under 1%"
        return f"data: loaded in {seconds(load_seconds)}, {share} of {epoch}"
    return (
        f"data: loaded in {seconds(load_seconds)}, {ratio:.1f} times {epoch}; it loads once "
        "per worker process, not per trial, so this is fine unless it is much slower"
    )


def verdict(outcome: Outcome, device_type: str) -> list[str]:
    """The findings, or the verdict line and the likely causes of a difference."""
    if outcome.findings:
        return [FINDINGS[key] for key in outcome.findings]
    if outcome.difference is None:
        return ["resume is exact"]
    said = causes(outcome.difference)
    if device_type != "cpu":
        said.append(f"on {device_type}, a kernel may not be deterministic: try --device cpu")
    wrapped = [
        textwrap.wrap(c, WIDTH, initial_indent="  ", subsequent_indent="    ") for c in said
    ]
    return [f"resume differs: {where(outcome.difference)}", *sum(wrapped, [])]


def where(d: Difference) -> str:
    if d.metric == "epoch":
        said = [f"epoch {e}" if e is not None else "nothing" for e in (d.straight, d.resumed)]
        return f"the straight run reported {said[0]} where the resumed one reported {said[1]}"
    place = f"in epoch {d.epoch}" if d.epoch is not None else "in the returned metrics"
    straight, resumed = number(d.straight, d.resumed), number(d.resumed, d.straight)
    return f"{d.metric} {place}: {straight} straight, {resumed} resumed"


def number(value: Any, other: Any) -> str:
    """``value`` with just enough digits to tell it from ``other``; "nothing" for None."""
    if value is None:
        return "nothing"
    for digits in (4, 6, 8, 10, 12, 14):
        if other is None or f"{value:.{digits}g}" != f"{other:.{digits}g}":
            return f"{value:.{digits}g}"
    return repr(value)


def causes(d: Difference) -> list[str]:
    """The likely causes, one a line (wrapped by ``verdict``)."""
    if d.metric == "epoch":
        return [
            "likely cause: the resumed run repeats or skips epochs; start at the epoch after "
            "the one in what ctx.restore() returns, and in every epoch call ctx.report before "
            "ctx.checkpoint"
        ]
    if d.epoch is not None and d.epoch <= STOP_EPOCH:
        return [
            f"two fresh runs differ already in epoch {d.epoch}, before any resume. Likely "
            "cause: randomness not drawn from ctx.generator or the global RNGs the service "
            "seeds (torch's, numpy's, random's), e.g. a numpy.random.default_rng() or "
            "random.Random() without a seed; or state kept between calls in the module"
        ]
    return [
        "likely causes: state left out of the checkpoint, such as the optimizer's or a "
        "learning-rate scheduler's state_dict();",
        "or randomness the checkpoint does not keep: a numpy.random.default_rng() or "
        "random.Random() of the task's own, or a DataLoader with its own generator (draw from "
        "ctx.generator or torch's, numpy's or random's global RNG instead);",
        "or ctx.restore() called before the model is built, whose initialisation then draws "
        "from the random state just restored: build the model and optimizer, then restore",
    ]


if __name__ == "__main__":
    sys.exit(main())
