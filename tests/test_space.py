from __future__ import annotations

import optuna
import pytest

from search.engine.schedules import Schedule
from search.errors import UsageError
from search.study.space.space import point_key
from search.study.space.spacefile import design
from search.tasks.mlp.vocabulary import BASELINE, to_configs


def test_ofat_design_is_the_baseline_plus_fourteen_single_changes():
    points = design("ofat").points
    assert len(points) == 15 and len({point_key(p) for p in points}) == 15
    assert points[0] == BASELINE
    for p in points[1:]:
        assert sum(p[k] != BASELINE[k] for k in BASELINE) == 1


def test_full_design_has_2187_distinct_points():
    points = design("full").points
    assert len(points) == 3**7 == len({point_key(p) for p in points})


def test_unknown_design_is_a_usage_error():
    with pytest.raises(UsageError, match="--design"):
        design("half")


def test_an_enqueued_point_comes_back_from_suggest():
    space = design("ofat")
    study = optuna.create_study()
    study.enqueue_trial(space.points[4])
    assert space.suggest(study.ask()) == space.points[4]


@pytest.mark.parametrize(
    ("change", "field", "expected"),
    [
        ({"regularization": "dropout"}, "model.dropout", 0.2),
        ({"regularization": "l2"}, "train.weight_decay", 0.01),
        ({"regularization": "l1", "reg_strength": 3e-4}, "train.l1", 3e-4),
        ({"layers": 5}, "model.hidden", (256, 128, 128, 64, 64)),
        ({"layers": 2, "units": 32}, "model.hidden", (32, 32)),
        ({"epochs": 25}, "train.epochs", 3),  # capped by max_epochs=3
        ({"dropout": 0.3, "weight_decay": 1e-4, "l1": 1e-6}, "train.weight_decay", 1e-4),
        ({"dropout": 0.3, "weight_decay": 1e-4, "l1": 1e-6}, "train.l1", 1e-6),
        ({"dropout": 0.3, "weight_decay": 1e-4, "l1": 1e-6}, "model.dropout", 0.3),
        ({"regularization": "l2", "dropout": 0.1}, "model.dropout", 0.1),
        ({"regularization": "l2", "dropout": 0.1}, "train.weight_decay", 0.01),
        ({"regularization": "l2", "weight_decay": 1e-3}, "train.weight_decay", 1e-3),
        (
            {"schedule": "cosine", "warmup_epochs": 1, "epochs": 3},
            "train.schedule",
            Schedule("cosine", 0.7, 1),
        ),
        # A run capped from 6 epochs to 3 is the whole run shrunk: its warm-up halves too.
        (
            {"schedule": "cosine", "warmup_epochs": 2, "epochs": 6},
            "train.schedule.warmup_epochs",
            1,
        ),
        ({"schedule": "step", "gamma": 0.5}, "train.schedule", Schedule("step", gamma=0.5)),
        ({}, "train.schedule", Schedule("constant")),
        ({"input_dropout": 0.2}, "model.input_dropout", 0.2),
        ({"label_smoothing": 0.1}, "train.label_smoothing", 0.1),
    ],
)
def test_points_map_to_the_trainer_configuration(change, field, expected):
    model, train = to_configs({**BASELINE, **change}, seed=1, max_epochs=3)
    owner, *attrs = field.split(".")
    value = {"model": model, "train": train}[owner]
    for attr in attrs:
        value = getattr(value, attr)
    assert value == expected
