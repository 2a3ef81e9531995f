"""Warm starts: a search begins from what is already known, so it never starts worse.

``--enqueue-baseline`` queues a known-good configuration (a dropout MLP recipe) as the first
trial; ``--warm-start STUDY`` queues the best finished points of another study in the
same database. A point is queued with the values the new space can hold; a point with a value
outside the space is left out, and the caller says how many were. Queued points count toward
the trial budget and are queued once, however often the command is rerun.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from search.errors import UsageError
from search.study.space.space import Choice, Fixed, Param, Range, Space
from search.study.storage.internals import storage_of
from search.study.storage.sqlite_files import is_new_sqlite
from search.study.storage.storage import missing_study, open_storage, records

WARM_START_POINTS = 5  # the best finished points of the other study that are queued
# A known-good MLP recipe, inside the default space: two hidden layers of 1,024 with dropout
# (as Srivastava et al. 2014), AdamW at its usual rate, decaying on a cosine after a warm-up.
# On 2 cores it scores about 98.7% test after 15-20 epochs (README, "The default space").
KNOWN_GOOD: dict[str, Any] = {
    "layers": 2,
    "units": 1024,
    "activation": "relu",
    "loss": "cross_entropy",
    "regularization": "none",  # the three strengths below instead
    "optimizer": "adamw",
    "lr_factor": 1.0,
    "schedule": "cosine",
    "warmup_epochs": 1,
    "dropout": 0.3,
    "input_dropout": 0.1,
    "weight_decay": 0.05,
    "l1": 0.0,
    "label_smoothing": 0.1,
    "batch_size": 128,
    "epochs": 15,
}


def holds(param: Param, value: Any) -> bool:
    """Whether a space's parameter can take this value."""
    if isinstance(param, Fixed):
        return value == param.value
    if isinstance(param, Choice):
        return value in param.values
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    whole = not param.integer or (number and int(value) == value)
    return number and whole and param.low <= value <= param.high


def fit_point(space: Space, point: dict[str, Any]) -> dict[str, Any] | None:
    """The point's values for the space's parameters; None if one is outside the space.
    Parameters the point does not name are left to the sampler."""
    fitted = {k: v for k, v in point.items() if k in space.params}
    if not all(holds(space.params[k], v) for k, v in fitted.items()):
        return None
    return fitted


def baseline_point(space: Space) -> dict[str, Any]:
    """The known-good point as the space holds it; refused when the space cannot."""
    # The epochs are the study's: a space that fixes them (--epochs) gives the baseline its own.
    baseline = {k: v for k, v in KNOWN_GOOD.items() if k != "epochs"}
    epochs = space.params.get("epochs")
    if isinstance(epochs, Range):  # --max-epochs caps the baseline as it caps every trial
        baseline["epochs"] = min(KNOWN_GOOD["epochs"], int(epochs.high))
    point = fit_point(space, baseline)
    if point is None:
        name = next(
            k for k, p in space.params.items() if k in baseline and not holds(p, baseline[k])
        )
        raise UsageError(
            f"--enqueue-baseline: the baseline's {name}={baseline[name]!r} is outside the "
            f"space {space.name!r}; widen params.{name} or leave out the flag"
        )
    return point


def source_trials(storage: BaseStorage, source_name: str) -> list[FrozenTrial]:
    """The completed trials of the study to warm-start from; refused when there are none."""
    if missing := missing_study(storage, source_name):
        raise UsageError(f"--warm-start: {missing}")
    source = optuna.load_study(study_name=source_name, storage=storage)
    done = source.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not done:
        raise UsageError(f"--warm-start: study {source_name!r} has no completed trial yet")
    return done


def check(storage_url: str, space: Space, baseline: bool, source: str | None) -> None:
    """Refuse, before any study is made, a warm start that cannot run."""
    if (baseline or source) and space.is_grid:
        flag = "--enqueue-baseline" if baseline else "--warm-start"
        raise UsageError(f"{flag}: a grid runs its own points; use it with a sampler")
    if baseline:
        baseline_point(space)
    if source:
        if (new := is_new_sqlite(storage_url)) is not None:
            raise UsageError(f"--warm-start: no study {source!r}: there is no database at {new}")
        source_trials(open_storage(storage_url, must_exist=True), source)


def warm_start(study: optuna.Study, source_name: str, space: Space) -> tuple[int, int]:
    """Queue the best finished points of ``source_name`` that fit the space (each once, however
    often this runs); return (how many fit, how many were considered)."""
    done = source_trials(storage_of(study), source_name)
    best = sorted(done, key=lambda t: -t.values[0])[:WARM_START_POINTS]
    queued = 0
    for t in best:
        point = fit_point(space, t.params)
        if point is not None:
            tag = {records.WARM_START: f"{source_name} trial {t.number}"}
            study.enqueue_trial(point, user_attrs=tag, skip_if_exists=True)
            queued += 1
    return queued, len(best)


def prepare(study: optuna.Study, space: Space, baseline: bool, source: str | None) -> str:
    """Queue the warm start a command asks for (``check`` has passed); returns what was done,
    for the user."""
    said = []
    if baseline:
        point = baseline_point(space)
        tag = {records.WARM_START: "baseline"}
        study.enqueue_trial(point, user_attrs=tag, skip_if_exists=True)
        said.append("the baseline queued first")
    if source:
        queued, considered = warm_start(study, source, space)
        said.append(
            f"{queued} of the {considered} best points of {source} fit this space and run first"
            + (f" ({considered - queued} do not fit)" if queued < considered else "")
        )
    return "; ".join(said)
