"""Studies: which space a command means, and opening its study with the settings it was made with.

A study records its settings, its space (the TOML text), the command and the package versions,
so that it can be resumed, joined by another worker, or reproduced; it is never resumed with
settings that would make its results incomparable.
"""

from __future__ import annotations

import platform
import sys
from dataclasses import asdict, dataclass

import optuna

from search.errors import UsageError
from search.objective import OBJECTIVES
from search.samplers import make_pruner, make_sampler
from search.space import Space, design, load_space
from search.storage import fail_orphaned_trials, fail_stale_trials, open_storage

DEFAULT_MAX_EPOCHS = 25  # the largest epoch count of the reference (bounds Hyperband)


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

    def default_name(self) -> str:
        parts = [self.dataset, self.space]
        if self.sampler != "grid":
            parts.append(self.sampler)
        if len(self.objectives) > 1:
            parts.append("-".join(self.objectives[1:]))
        if self.max_epochs is not None:
            parts.append(f"e{self.max_epochs}")
        if self.train_limit is not None:
            parts.append(f"n{self.train_limit}")
        return "-".join(parts)

    def to_attr(self) -> dict:
        return {**asdict(self), "objectives": list(self.objectives)}


def parse_objectives(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in OBJECTIVES]
    if unknown or not names or names[0] != "accuracy" or len(set(names)) != len(names):
        raise UsageError(
            f"--objectives: expected accuracy, optionally followed by seconds or "
            f"params (e.g. accuracy,seconds), got {text!r}"
        )
    return names


def resolve_space(
    sampler: str, design_name: str | None, space_file: str | None, max_epochs: int | None
) -> Space:
    """The space a command means: a file, a built-in design, or the default for its sampler."""
    if design_name and space_file:
        raise UsageError("--design and --space: give one or the other")
    if space_file:
        space = load_space(space_file)
    else:
        space = design(design_name or ("ofat" if sampler == "grid" else "default"))
    space = (
        space.as_grid(f"--sampler grid with space {space.name!r}")
        if sampler == "grid"
        else space.without_grid()
    )
    return space.capped(max_epochs)


def versions() -> dict[str, str]:
    from importlib.metadata import version  # not importing torchvision: seconds per process

    import torch

    from search import __version__

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": version("torchvision"),
        "optuna": optuna.__version__,
        "search": __version__,
        "platform": platform.platform(),
    }


def open_study(
    storage_url: str, name: str | None, settings: StudySettings, space: Space
) -> optuna.Study:
    """Create the study, or load it and check that it was made with the same settings."""
    storage = open_storage(storage_url)
    name = name or settings.default_name()
    directions = [OBJECTIVES[o] for o in settings.objectives]
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        directions=directions,
        load_if_exists=True,
        sampler=make_sampler(settings.sampler, settings.seed),
        pruner=make_pruner(settings.pruner, settings.max_epochs or DEFAULT_MAX_EPOCHS),
    )
    stored = study.user_attrs.get("settings")
    if stored is None:
        study.set_user_attr("settings", settings.to_attr())
        study.set_user_attr("space_toml", space.source)
        study.set_user_attr("command", "python -m search.run " + " ".join(sys.argv[1:]))
        study.set_user_attr("versions", versions())
    elif stored != settings.to_attr():
        diff = ", ".join(
            f"{k}={stored.get(k)!r} (now {v!r})"
            for k, v in settings.to_attr().items()
            if stored.get(k) != v
        )
        raise UsageError(
            f"study {name!r} was run with other settings: {diff}; "
            "resume it with the same options or choose another --study-name"
        )
    fail_orphaned_trials(storage, study)
    fail_stale_trials(study)
    return study
