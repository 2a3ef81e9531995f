"""Search-space stage: designs and spaces, and the one place that calls ``trial.suggest_*``.

A space maps each name of the vocabulary to a fixed value, a list of choices, or an int or float
range. A design is a space whose choices are enumerated as grid points: ``ofat`` (the reference's
one-factor-at-a-time study, 15 points) and ``full`` (every combination of seven factors at three
levels, 3^7 = 2,187 points). ``to_configs`` turns one point into the trainer's configurations.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any

from search.errors import UsageError
from search.model import ACTIVATIONS, REFERENCE_HIDDEN, ModelConfig
from search.optim import OPTIMIZERS
from search.train import LOSSES, TrainConfig

REGULARIZATIONS = ("none", "l1", "l2", "dropout")
# Strength used when a point names a regularization without one: L2 is the reference's planned
# Adadelta weight decay; L1 multiplies the sum of |w|; dropout is the drop probability.
DEFAULT_STRENGTH = {"none": 0.0, "l1": 1e-5, "l2": 1e-2, "dropout": 0.2}

BASELINE: dict[str, Any] = {
    "layers": 1,
    "activation": "relu",
    "loss": "nll",
    "regularization": "none",
    "batch_size": 64,
    "epochs": 14,
    "lr": 1.0,
}
OFAT_LEVELS: dict[str, list[Any]] = {
    "layers": [1, 3, 5],
    "activation": ["relu", "sigmoid", "tanh"],
    "loss": ["nll", "cross_entropy", "mse"],
    "regularization": ["none", "l1", "l2", "dropout"],
    "batch_size": [16, 64, 256],
    "epochs": [14, 25],
    "lr": [0.1, 1.0, 10.0],
}
FULL_LEVELS: dict[str, list[Any]] = {
    **OFAT_LEVELS,
    "regularization": ["none", "l2", "dropout"],
    "epochs": [5, 14, 25],
}


@dataclass(frozen=True)
class Choice:
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Fixed:
    value: Any


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int
    log: bool = False


@dataclass(frozen=True)
class FloatRange:
    low: float
    high: float
    log: bool = False


Param = Choice | Fixed | IntRange | FloatRange


def point_key(point: dict[str, Any]) -> str:
    """A canonical text for a grid point, equal for equal points."""
    return json.dumps(point, sort_keys=True)


@dataclass(frozen=True)
class Space:
    name: str
    params: dict[str, Param]
    points: tuple[dict[str, Any], ...] = ()  # the grid; empty for a space a sampler explores

    @property
    def is_grid(self) -> bool:
        return bool(self.points)

    def suggest(self, trial: Any) -> dict[str, Any]:
        """Ask the trial for every parameter (an enqueued grid point answers with its values)."""
        out: dict[str, Any] = {}
        for name, p in self.params.items():
            if isinstance(p, Fixed):
                out[name] = p.value
            elif isinstance(p, Choice):
                out[name] = trial.suggest_categorical(name, list(p.values))
            elif isinstance(p, IntRange):
                out[name] = trial.suggest_int(name, p.low, p.high, log=p.log)
            else:
                out[name] = trial.suggest_float(name, p.low, p.high, log=p.log)
        return out

    def differs_from_baseline(self, point: dict[str, Any]) -> str:
        diff = [f"{k}={v}" for k, v in point.items() if k in BASELINE and BASELINE[k] != v]
        return ", ".join(diff) or "baseline"


def ofat_points() -> list[dict[str, Any]]:
    points = [dict(BASELINE)]
    for factor, levels in OFAT_LEVELS.items():
        points += [{**BASELINE, factor: v} for v in levels if v != BASELINE[factor]]
    return points


def full_points() -> list[dict[str, Any]]:
    names = list(FULL_LEVELS)
    combos = itertools.product(*FULL_LEVELS.values())
    return [dict(zip(names, combo, strict=True)) for combo in combos]


def design(name: str) -> Space:
    """A built-in design by name: ``ofat`` or ``full``."""
    if name == "ofat":
        levels, points = OFAT_LEVELS, ofat_points()
    elif name == "full":
        levels, points = FULL_LEVELS, full_points()
    else:
        raise UsageError(f"--design: expected one of {', '.join(DESIGNS)}, got {name!r}")
    params = {k: Choice(tuple(v)) for k, v in levels.items()}
    return Space(name, params, tuple(points))


DESIGNS = ("ofat", "full")


def to_configs(
    point: dict[str, Any], seed: int, max_epochs: int | None = None
) -> tuple[ModelConfig, TrainConfig]:
    """Map a point of the vocabulary to the model's and trainer's configurations.

    Vocabulary: layers, units (hidden size of every layer; without it the reference's sizes),
    activation, loss, regularization (none|l1|l2|dropout), reg_strength, optimizer, lr,
    batch_size, epochs. ``max_epochs`` caps the epochs (for a quick look).
    """
    p = {**BASELINE, **point}
    reg = p["regularization"]
    if reg not in REGULARIZATIONS:
        raise UsageError(f"regularization: expected one of {REGULARIZATIONS}, got {reg!r}")
    strength = float(p.get("reg_strength", DEFAULT_STRENGTH[reg]))
    layers = int(p["layers"])
    if "units" in p:
        hidden = (int(p["units"]),) * layers
    elif layers in REFERENCE_HIDDEN:
        hidden = REFERENCE_HIDDEN[layers]
    else:
        raise UsageError(f"layers: {layers} has no reference sizes; give 'units' as well")
    epochs = int(p["epochs"]) if max_epochs is None else min(int(p["epochs"]), max_epochs)
    model = ModelConfig(
        hidden=hidden,
        activation=p["activation"],
        dropout=strength if reg == "dropout" else 0.0,
    )
    train = TrainConfig(
        optimizer=p.get("optimizer", "adadelta"),
        lr=float(p["lr"]),
        batch_size=int(p["batch_size"]),
        epochs=epochs,
        loss=p["loss"],
        l1=strength if reg == "l1" else 0.0,
        weight_decay=strength if reg == "l2" else 0.0,
        seed=seed,
    )
    return model, train


VOCABULARY = (
    "layers",
    "units",
    "activation",
    "loss",
    "regularization",
    "reg_strength",
    "optimizer",
    "lr",
    "batch_size",
    "epochs",
)
# Names whose values come from a fixed list (the rest are numbers).
CATEGORIES: dict[str, tuple[Any, ...]] = {
    "activation": tuple(ACTIVATIONS),
    "loss": LOSSES,
    "regularization": REGULARIZATIONS,
    "optimizer": OPTIMIZERS,
}
