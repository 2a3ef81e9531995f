"""Run a study: ``python -m search.run --sampler grid`` runs the reference's one-factor grid.

Results go to an Optuna database (default ``sqlite:///study_db/mnist.db``); running the same
command again resumes the study: finished points are kept, interrupted ones run again.
``python -m search.run --help`` lists the options.
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
from dataclasses import asdict, dataclass
from typing import NoReturn

import optuna
import torch
from tqdm import tqdm

from search import data as data_mod
from search import runner
from search.errors import SearchError, UsageError
from search.objective import Objective, ObjectiveConfig
from search.samplers import DEFAULT_PRUNER, PRUNERS, SAMPLERS, make_pruner, make_sampler
from search.space import DESIGNS, Space, design
from search.storage import DEFAULT_STORAGE, fail_orphaned_trials, open_storage
from search.summary import format_table, pct, rows_for_trials, summary_rows

EXIT_INTERRUPTED = 130  # the shell's convention for SIGINT


@dataclass(frozen=True)
class StudySettings:
    """What makes results comparable; a study is only ever resumed with the same settings."""

    dataset: str
    design: str
    sampler: str
    seed: int
    max_epochs: int | None
    train_limit: int | None
    val_size: int

    def default_name(self) -> str:
        name = f"{self.dataset}-{self.design}"
        if self.sampler != "grid":
            name += f"-{self.sampler}"
        if self.max_epochs is not None:
            name += f"-e{self.max_epochs}"
        if self.train_limit is not None:
            name += f"-n{self.train_limit}"
        return name


def positive_int(text: str) -> int:
    value = int(text) if text.strip().isdigit() else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


class Parser(argparse.ArgumentParser):
    """Usage errors as one line (exit code 2) instead of the whole usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m search.run", description=__doc__.splitlines()[0])
    p.add_argument("--sampler", choices=sorted(SAMPLERS), default="grid")
    p.add_argument(
        "--pruner",
        choices=sorted(PRUNERS),
        default=None,
        help="default: none for grid, median otherwise",
    )
    p.add_argument("--design", choices=DESIGNS, default="ofat")
    p.add_argument(
        "--study-name",
        default=None,
        help="default: DATASET-DESIGN plus any caps, e.g. mnist-ofat-e1-n2000",
    )
    p.add_argument("--storage", default=DEFAULT_STORAGE, help=f"default: {DEFAULT_STORAGE}")
    p.add_argument("--dataset", choices=sorted(data_mod.DATASETS), default="mnist")
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
        help="trial budget for the whole study (default: the whole grid)",
    )
    p.add_argument("--timeout", type=float, default=None, help="seconds for this run")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--quiet", action="store_true", help="print only the summary")
    out.add_argument("--verbose", action="store_true", help="print every epoch")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": torch.backends.mps.is_available(),
    }
    if not available[name]:
        raise UsageError(f"--device {name}: not available on this machine; use --device auto")
    return torch.device(name)


def versions() -> dict[str, str]:
    import torchvision

    from search import __version__

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "optuna": optuna.__version__,
        "search": __version__,
        "platform": platform.platform(),
    }


def open_study(args: argparse.Namespace, settings: StudySettings) -> optuna.Study:
    storage = open_storage(args.storage)
    name = args.study_name or settings.default_name()
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        direction="maximize",
        load_if_exists=True,
        sampler=make_sampler(settings.sampler, settings.seed),
        pruner=make_pruner(args.pruner or DEFAULT_PRUNER[settings.sampler]),
    )
    stored = study.user_attrs.get("settings")
    if stored is None:
        study.set_user_attr("settings", asdict(settings))
        study.set_user_attr("command", "python -m search.run " + " ".join(sys.argv[1:]))
        study.set_user_attr("versions", versions())
    elif stored != asdict(settings):
        diff = ", ".join(
            f"{k}={stored.get(k)!r} (now {v!r})"
            for k, v in asdict(settings).items()
            if stored.get(k) != v
        )
        raise UsageError(
            f"study {name!r} was run with other settings: {diff}; "
            "resume it with the same options or choose another --study-name"
        )
    fail_orphaned_trials(storage, study)
    return study


def execute(args: argparse.Namespace) -> int:
    settings = StudySettings(
        args.dataset,
        args.design,
        args.sampler,
        args.seed,
        args.max_epochs,
        args.train_limit,
        args.val_size,
    )
    grid = design(args.design)
    space = grid if args.sampler == "grid" else Space(grid.name, grid.params)
    device = resolve_device(args.device)
    study = open_study(args, settings)
    say = (lambda _msg: None) if args.quiet else (lambda msg: tqdm.write(msg, file=sys.stderr))
    cfg = runner.RunnerConfig(n_trials=args.n_trials, timeout=args.timeout)
    if space.is_grid:
        runner.enqueue_missing(study, space, cfg.max_retries)
        waiting = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
        total, todo = len(space.points), len(waiting)
    else:
        total = args.n_trials or 0
        todo = max(0, total - len(study.get_trials(deepcopy=False, states=runner.DONE)))
    if todo:
        data_cfg = data_mod.DataConfig(
            dataset=args.dataset,
            data_dir=args.data_dir or data_mod.default_data_dir(),
            val_size=args.val_size,
            train_limit=args.train_limit,
            seed=args.seed,
        )
        splits = data_mod.load(data_cfg, device)
        objective = Objective(
            space,
            splits,
            ObjectiveConfig(args.seed, args.max_epochs),
            log=say if args.verbose else None,
        )
        say(f"study {study.study_name}: {todo} trials to run on {device}")
        with tqdm(
            total=total or None,
            initial=(total - todo) if total else 0,
            unit="trial",
            desc=study.study_name,
            disable=args.quiet,
            file=sys.stderr,
        ) as bar:

            def on_done(t: optuna.trial.FrozenTrial) -> None:
                bar.update(1)
                row = rows_for_trials([t], space)[0]
                say(
                    f"trial {t.number} {row['differs']}: {t.state.name} val "
                    f"{pct(row['val_acc'])} test {pct(row['test_acc'])} "
                    f"{row['seconds'] or 0:.1f} s {row['note']}".rstrip()
                )

            runner.run(study, space, objective, cfg, on_done)
    print(f"study {study.study_name} in {args.storage}")
    print(format_table(summary_rows(study, space)))
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
