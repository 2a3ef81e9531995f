"""The vocabulary of a space file, and how a point of it maps onto the engine's configurations.

A point names some of ``VOCABULARY`` (``layers``, ``activation``, ``lr_factor``...); the names
it leaves out take the reference study's baseline. ``to_configs`` turns it into the
``ModelConfig`` and ``TrainConfig`` that ``search.engine.train.fit`` runs.
"""

from __future__ import annotations

import math
from typing import Any

from search.engine.config import ACTIVATIONS, LOSSES, OPTIMIZERS, ModelConfig, TrainConfig
from search.engine.schedules import SCHEDULES, Schedule
from search.errors import UsageError

# The objectives ``--objectives`` names, as metrics the task's train returns: the judged
# epoch's validation accuracy, the training run's seconds, the model's size.
OBJECTIVES = {
    "accuracy": ("val_acc", "maximize"),
    "seconds": ("seconds", "minimize"),
    "params": ("n_params", "minimize"),
}
# The reference's hidden sizes for 1, 3 and 5 layers.
REFERENCE_HIDDEN: dict[int, tuple[int, ...]] = {
    1: (128,),
    3: (128, 64, 64),
    5: (256, 128, 128, 64, 64),
}
REGULARIZATIONS = ("none", "l1", "l2", "dropout")
# Strength used when a point names a regularization without one: L2 is the reference's planned
# Adadelta weight decay; L1 multiplies the sum of |w|; dropout is the drop probability.
DEFAULT_STRENGTH = {"none": 0.0, "l1": 1e-5, "l2": 1e-2, "dropout": 0.2}
# The optimizers' usual rates, which lr_factor scales.
BASE_LR = {"adadelta": 1.0, "sgd": 0.05, "nesterov": 0.05, "adam": 1e-3, "adamw": 1e-3}
BASELINE: dict[str, Any] = {
    "layers": 1,
    "activation": "relu",
    "loss": "nll",
    "regularization": "none",
    "batch_size": 64,
    "epochs": 14,
    "lr": 1.0,
}
CATEGORIES: dict[str, tuple[Any, ...]] = {
    "activation": ACTIVATIONS,
    "loss": LOSSES,
    "regularization": REGULARIZATIONS,
    "optimizer": OPTIMIZERS,
    "schedule": SCHEDULES,
}
# Numeric names with their smallest allowed value, whether it is allowed, and the type.
NUMBERS: dict[str, tuple[float, bool, type]] = {
    "layers": (1, True, int),
    "units": (1, True, int),
    "batch_size": (1, True, int),
    "epochs": (1, True, int),
    "lr": (0, False, float),
    "lr_factor": (0, False, float),
    "reg_strength": (0, True, float),
    "dropout": (0, True, float),
    "weight_decay": (0, True, float),  # L2, with regularization or without
    "l1": (0, True, float),
    "gamma": (0, False, float),  # the step schedule's factor per epoch, at most 1
    "warmup_epochs": (0, True, float),
    "label_smoothing": (0, True, float),  # below 1
    "input_dropout": (0, True, float),  # below 1
}
VOCABULARY = tuple(CATEGORIES) + tuple(NUMBERS)
# Names that change a run only under another name's value: (that name, its values where they
# do). A point without that name has its default (the baseline's, or a constant rate).
CONDITIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "reg_strength": ("regularization", ("l1", "l2", "dropout")),
    "gamma": ("schedule", ("step",)),
    "warmup_epochs": ("schedule", ("cosine",)),
}
_UNSET = {"regularization": BASELINE["regularization"], "schedule": Schedule.kind}


def applies(name: str, point: dict[str, Any]) -> bool:
    """Whether ``name`` changes a run of ``point`` (CONDITIONS)."""
    if name not in CONDITIONS:
        return True
    other, values = CONDITIONS[name]
    return point.get(other, _UNSET[other]) in values


def check_value(where: str, name: str, value: Any) -> None:
    """One value of ``name``: a known category, or a number of the right type and range."""
    if name in CATEGORIES and value not in CATEGORIES[name]:
        allowed = ", ".join(map(str, CATEGORIES[name]))
        raise UsageError(f"{where}: {value!r} is not one of {allowed}")
    if name in NUMBERS:
        low, inclusive, kind = NUMBERS[name]
        ok_type = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok_type or (kind is int and int(value) != value):
            expected = "a whole number" if kind is int else "a number"
            raise UsageError(f"{where}: expected {expected}, got {value!r}")
        if not math.isfinite(value):  # nan compares false with every bound below
            raise UsageError(f"{where}: expected a finite number, got {value!r}")
        below_one = name in ("dropout", "input_dropout", "label_smoothing")
        too_high = (below_one and value >= 1) or (name == "gamma" and value > 1)
        if value < low or (value == low and not inclusive) or too_high:
            raise UsageError(f"{where}: {value!r} is out of range for {name}")


def to_configs(
    point: dict[str, Any], seed: int, max_epochs: int | None = None
) -> tuple[ModelConfig, TrainConfig]:
    """Map a point of the vocabulary to the model's and trainer's configurations.

    Names a point leaves out take the reference baseline. ``units`` gives every hidden layer
    that width (without it, the reference's sizes for 1, 3 or 5 layers); ``lr_factor``
    scales the optimizer's usual rate unless ``lr`` is given; ``max_epochs`` caps the epochs
    (and shortens a warm-up in proportion).
    ``dropout``, ``weight_decay`` and ``l1`` combine; the reference's one-of ``regularization``
    sets the one it names where the point does not give it.
    """
    p = {**BASELINE, **point}
    reg, optimizer = p["regularization"], p.get("optimizer", "adadelta")
    strength = float(p.get("reg_strength", DEFAULT_STRENGTH[reg])) if reg != "none" else 0.0
    layers = int(p["layers"])
    if "units" in p:
        hidden = (int(p["units"]),) * layers
    elif layers in REFERENCE_HIDDEN:
        hidden = REFERENCE_HIDDEN[layers]
    else:
        raise UsageError(f"layers: {layers} has no reference sizes; give 'units' as well")
    lr = (
        float(point["lr"])
        if "lr" in point
        else (BASE_LR[optimizer] * float(point["lr_factor"]) if "lr_factor" in point else p["lr"])
    )
    epochs, warmup = int(p["epochs"]), float(p.get("warmup_epochs", 0.0))
    if max_epochs is not None and max_epochs < epochs:
        warmup *= max_epochs / epochs  # a capped run is the whole run shrunk, warm-up included
        epochs = max_epochs
    named = {"dropout": "dropout", "l1": "l1", "l2": "weight_decay"}
    strengths = {
        k: float(p.get(k, strength if named.get(reg) == k else 0.0)) for k in named.values()
    }
    schedule = Schedule(
        kind=p.get("schedule", "constant"),
        gamma=float(p.get("gamma", Schedule.gamma)),
        warmup_epochs=warmup,
    )
    model = ModelConfig(
        hidden=hidden,
        activation=p["activation"],
        dropout=strengths["dropout"],
        input_dropout=float(p.get("input_dropout", 0.0)),
    )
    train = TrainConfig(
        optimizer=optimizer,
        lr=lr,
        schedule=schedule,
        batch_size=int(p["batch_size"]),
        epochs=epochs,
        loss=p["loss"],
        label_smoothing=float(p.get("label_smoothing", 0.0)),
        l1=strengths["l1"],
        weight_decay=strengths["weight_decay"],
        seed=seed,
    )
    return model, train
