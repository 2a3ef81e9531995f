"""Study settings: what makes a study's results comparable, and reading them back.

A study records its settings, its space (the TOML text), its trial budget, the command that made it
(passwords hidden) and the package versions (``search.study.storage.opening``), so that it can be
resumed, joined by a worker on another machine, or reproduced. Workers read everything back from
here (``stored_*``).
"""

from __future__ import annotations

import platform
import shlex
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import optuna

from search.engine.datasets import DataConfig
from search.engine.history import UNRECORDED_JUDGE
from search.errors import SearchError, UsageError
from search.study.running.budget import RunnerConfig
from search.study.space.samplers import make_pruner, make_sampler
from search.study.space.space import Space
from search.study.space.spacefile import design, load_space, parse_space
from search.study.storage.storage import display_url, records
from search.tasks.loading import BUILT_IN, COMMAND_PREFIX, Task
from search.tasks.mlp.vocabulary import OBJECTIVES as MLP_OBJECTIVES

RECORDED_PACKAGES = ("torch", "torchvision", "optuna", "numpy", "numba", "search")
DIRECTION_WORDS = {"max": "maximize", "maximize": "maximize", "min": "minimize",
                   "minimize": "minimize"}  # fmt: skip


def default_precision(sampler: str) -> str:
    """A grid stays fp32, so the reference table reproduces; a search uses bf16 products where
    the device is fast at them (``auto``)."""
    return "fp32" if sampler == "grid" else "auto"


def default_judge(sampler: str) -> str:
    """A grid keeps the reference's best epoch, so its table stays the reference's; a search
    is judged by its last epoch, the one the kept model scores (a schedule ends there)."""
    return "best" if sampler == "grid" else "last"


@dataclass(frozen=True)
class StudySettings:
    """What makes results comparable; a study is only ever resumed with the same settings."""

    dataset: str
    space: str
    sampler: str
    pruner: str
    objectives: tuple[str, ...]
    seed: int
    max_epochs: int | None
    train_limit: int | None
    val_size: int
    # Added later: a study stored without them was run with these values.
    epochs: int | None = None  # every trial's epochs (--epochs); None: the space's own
    judge_epoch: str = UNRECORDED_JUDGE  # which epoch's validation accuracy is the objective
    task: str = BUILT_IN  # what a trial trains (search.tasks.loading): mlp, a file, a module
    # The products' precision (search.engine.precision): auto, fp32 or bf16. None in a
    # command that did not say: the study's own when it is resumed, else default_precision.
    precision: str | None = "fp32"

    @property
    def built_in(self) -> bool:
        return self.task == BUILT_IN

    def objective_metrics(self) -> tuple[tuple[str, str], ...]:
        """(metric, direction) of each objective: the MLP's names (accuracy, seconds,
        params) as its metrics; a task's, as recorded (``metric:direction``)."""
        if self.built_in:
            return tuple(MLP_OBJECTIVES[name] for name in self.objectives)
        return tuple(tuple(o.rsplit(":", 1)) for o in self.objectives)  # type: ignore[misc]

    @classmethod
    def from_attr(cls, stored: dict) -> StudySettings:
        return cls(**{**stored, "objectives": tuple(stored["objectives"])})

    def default_name(self) -> str:
        parts = [self.dataset if self.built_in else task_label(self.task), self.space]
        if self.sampler != "grid":
            parts.append(self.sampler)
        if len(self.objectives) > 1:
            parts.append("-".join(self.objectives[1:]))
        if self.epochs is not None:
            parts.append(f"ep{self.epochs}")
        if self.max_epochs is not None:
            parts.append(f"e{self.max_epochs}")
        if self.train_limit is not None:
            parts.append(f"n{self.train_limit}")
        if self.val_size != DataConfig.val_size:
            parts.append(f"v{self.val_size}")
        return "-".join(parts)

    def to_attr(self) -> dict:
        return {**asdict(self), "objectives": list(self.objectives)}

    def search(
        self, space: Space, worker_index: int = 0
    ) -> tuple[optuna.samplers.BaseSampler, optuna.pruners.BasePruner]:
        """The seeded sampler, and the pruner for the space's trials; each worker seeds its
        sampler apart (the seed plus ``worker_index``), or they would all suggest the same
        points."""
        sampler = make_sampler(self.sampler, (self.seed + worker_index) % 2**32)
        return sampler, make_pruner(self.pruner, space.horizon(self.max_epochs))


def parse_objectives(text: str) -> tuple[str, ...]:
    """The built-in MLP's ``--objectives``: accuracy, then optionally seconds or params."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in MLP_OBJECTIVES]
    if unknown or not names or names[0] != "accuracy" or len(set(names)) != len(names):
        raise UsageError(
            f"--objectives: expected accuracy, optionally followed by seconds or "
            f"params (e.g. accuracy,seconds), got {text!r}"
        )
    return names


def parse_task_objectives(text: str) -> tuple[str, ...]:
    """A task's ``--objectives``: ``metric:maximize`` (or max, minimize, min), comma-separated,
    recorded as ``metric:direction``."""
    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        metric, _, word = part.rpartition(":")
        if not metric or word not in DIRECTION_WORDS:
            raise UsageError(
                f"--objectives: expected METRIC:maximize or METRIC:minimize, comma-separated "
                f"(e.g. val_loss:minimize), got {text!r}"
            )
        out.append(f"{metric}:{DIRECTION_WORDS[word]}")
    if not out or len({o.rpartition(":")[0] for o in out}) != len(out):
        raise UsageError(f"--objectives: expected distinct metrics, got {text!r}")
    return tuple(out)


def task_label(ref: str) -> str:
    """A task's short name for study names: a file's stem, a module's last part."""
    if ref.startswith(COMMAND_PREFIX):
        return "command"
    target = ref.split(":", 1)[0]  # without an object's :name
    stem = Path(target).stem if target.endswith(".py") else target.rpartition(".")[2]
    return stem or "task"


def check_task_space(task: Task, space: Space) -> None:
    """A command task's placeholders must each be a parameter of its space."""
    if not task.ref.startswith(COMMAND_PREFIX):
        return
    from search.tasks.command import placeholders

    missing = sorted(placeholders(task.ref[len(COMMAND_PREFIX) :]) - set(space.params))
    if missing:
        raise UsageError(
            f"--task {task.ref}: {{{missing[0]}}} is not a parameter of space {space.name!r} "
            f"(it has {', '.join(space.params)}); add it to [params] or change the command"
        )


def shape_space(space: Space, settings: StudySettings, where: str) -> Space:
    """A grid of its points for ``grid``, its ranges for other samplers; the study's epochs."""
    grid = settings.sampler == "grid"
    space = space.as_grid(where) if grid else space.without_grid().with_epochs(settings.epochs)
    if settings.epochs is not None:
        space.check_warmup(f"--epochs {settings.epochs}")
    return space.capped(settings.max_epochs)


def choose_space(
    sampler: str, design_name: str | None, space_file: str | None, task: Task
) -> Space:
    """The space a command means, as written: a file, a built-in design, the task's own, or
    for the MLP the default for its sampler (the one-factor grid for ``grid``).
    ``shape_space`` fits it to the study."""
    if design_name and space_file:
        raise UsageError("--design and --space: give one or the other")
    if not task.built_in:
        if design_name:
            raise UsageError(f"--design: the built-in MLP's grids; --task {task.ref} has its own")
        path = space_file or task.space_file
        if path is None and task.ref.startswith(COMMAND_PREFIX):
            raise UsageError(
                f"--task {task.ref}: no space: give --space FILE.toml, or put NAME.toml "
                "beside the script NAME.py the command runs"
            )
        if path is None:
            raise UsageError(
                f"--task {task.ref}: no space: give --space FILE.toml, put {task.name}.toml "
                "beside the task file, or name one with SPACE = 'FILE.toml' in it"
            )
        return load_space(path, open_=True)
    if space_file:
        return load_space(space_file)
    return design(design_name or ("ofat" if sampler == "grid" else "default"))


def command_line(prog: str, argv: Sequence[str]) -> str:
    """The command as it was run, with any database password hidden."""
    shown = []
    for arg in argv:
        option, eq, value = arg.partition("=")
        if eq and "://" in value:
            shown.append(f"{option}={display_url(value)}")
        else:
            shown.append(display_url(arg) if "://" in arg else arg)
    return " ".join(["python", "-m", prog, *map(shlex.quote, shown)])


def versions() -> dict[str, str]:
    """Python, the platform, and the packages that decide a result (those installed)."""
    found = {"python": platform.python_version(), "platform": platform.platform()}
    for name in RECORDED_PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def stored_settings(study: optuna.Study) -> StudySettings:
    """The settings the study was made with; a study made elsewhere cannot be run here."""
    s = records.study_record(study, records.SETTINGS)
    if not s or not records.study_record(study, records.SPACE_TOML):
        raise SearchError(
            f"study {study.study_name!r} was not made by search.run; a worker cannot join it"
        )
    return StudySettings.from_attr(s)


def stored_space(study: optuna.Study) -> Space:
    """The space the study runs, shaped as when it was made; an empty one for a study made
    elsewhere (a report can still show its trials)."""
    text = records.study_record(study, records.SPACE_TOML)
    if not text:
        return Space("unknown", {})
    s = records.study_record(study, records.SETTINGS)
    settings = StudySettings.from_attr(s) if s else None
    open_ = settings is not None and not settings.built_in
    space = parse_space(text, f"the space stored with study {study.study_name!r}", open_=open_)
    if settings is None:
        return space
    return shape_space(space, settings, "the stored space")


def stored_budget(study: optuna.Study) -> RunnerConfig:
    """The trial budget the last ``search.run`` of the study set."""
    budget = records.study_record(study, records.BUDGET) or {}
    return RunnerConfig(n_trials=budget.get("n_trials"), timeout=budget.get("timeout"))
