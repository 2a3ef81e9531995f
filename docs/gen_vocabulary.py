"""The MLP's space vocabulary as a table, read from its own registry.

Names, types and allowed values come from ``search.tasks.mlp.vocabulary`` (``CATEGORIES``,
``NUMBERS``, ``CONDITIONS``), its upper bounds from asking its own ``check_value``, and each
name's default (what a point that leaves it out runs with) from ``to_configs`` of an empty
point: the reference's baseline. Nothing here imports torch until a page is built.
"""

from __future__ import annotations

from typing import Any

PROBE = "docs"  # the ``where`` of a probing check_value call; its message is never shown

# Where to_configs puts each name's value: (the model's or the trainer's config, attribute).
CONFIG_FIELDS = {
    "activation": ("model", "activation"),
    "dropout": ("model", "dropout"),
    "input_dropout": ("model", "input_dropout"),
    "loss": ("train", "loss"),
    "optimizer": ("train", "optimizer"),
    "lr": ("train", "lr"),
    "batch_size": ("train", "batch_size"),
    "epochs": ("train", "epochs"),
    "weight_decay": ("train", "weight_decay"),
    "l1": ("train", "l1"),
    "label_smoothing": ("train", "label_smoothing"),
}
SCHEDULE_FIELDS = {"schedule": "kind", "gamma": "gamma", "warmup_epochs": "warmup_epochs"}


def number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def upper_bound(name: str) -> str:
    """A float's upper bound as ``check_value`` enforces it: below 1, at most 1, or none."""
    from search.errors import UsageError
    from search.tasks.mlp.vocabulary import check_value

    for value, bound in ((1.0, "< 1"), (1.5, "≤ 1")):
        try:
            check_value(PROBE, name, value)
        except UsageError:
            return bound
    return ""


def allowed(name: str) -> tuple[str, str]:
    """(type, allowed values) of one name."""
    from search.tasks.mlp.vocabulary import CATEGORIES, NUMBERS

    if name in CATEGORIES:
        return "choice", ", ".join(f"`{v}`" for v in CATEGORIES[name])
    low, inclusive, kind = NUMBERS[name]
    bounds = [f"{'≥' if inclusive else '>'} {number(low)}"]
    if kind is float and (high := upper_bound(name)):
        bounds.append(high)
    return ("whole number" if kind is int else "number"), ", ".join(bounds)


def default(name: str) -> str:
    """What a point that leaves ``name`` out runs with (the reference's baseline)."""
    from search.tasks.mlp.vocabulary import (
        DEFAULT_STRENGTH,
        REFERENCE_HIDDEN,
        to_configs,
    )

    model, train = to_configs({}, seed=1)
    configs = {"model": model, "train": train}
    if name in CONFIG_FIELDS:
        config, field = CONFIG_FIELDS[name]
        return f"`{number(getattr(configs[config], field))}`"
    if name in SCHEDULE_FIELDS:
        return f"`{number(getattr(train.schedule, SCHEDULE_FIELDS[name]))}`"
    if name == "layers":
        return f"`{len(model.hidden)}`"
    if name == "units":
        sizes = "; ".join(f"{n}: {list(h)}" for n, h in REFERENCE_HIDDEN.items())
        return f"the reference's sizes by layers ({sizes})"
    if name == "regularization":
        return "`none`"
    if name == "reg_strength":
        return ", ".join(f"{k} `{number(v)}`" for k, v in DEFAULT_STRENGTH.items() if v)
    if name == "lr_factor":
        return "none: `lr` is used"
    return ""


def applies_when(name: str) -> str:
    from search.tasks.mlp.vocabulary import CONDITIONS

    if name not in CONDITIONS:
        return "always"
    other, values = CONDITIONS[name]
    return f"`{other}` is " + " or ".join(f"`{v}`" for v in values)


def vocabulary_table() -> str:
    """Every name a space file of the MLP may give, one row each."""
    from search.tasks.mlp.vocabulary import VOCABULARY

    rows = [
        "| name | type | allowed | without it | counts when |",
        "|---|---|---|---|---|",
    ]
    for name in sorted(VOCABULARY):
        kind, values = allowed(name)
        rows.append(f"| `{name}` | {kind} | {values} | {default(name)} | {applies_when(name)} |")
    return "\n".join(rows)


def base_rates() -> str:
    """Each optimizer's usual rate, which ``lr_factor`` scales (``BASE_LR``)."""
    from search.tasks.mlp.vocabulary import BASE_LR

    rows = ["| `optimizer` | its usual rate |", "|---|---|"]
    rows += [f"| `{name}` | {number(rate)} |" for name, rate in BASE_LR.items()]
    return "\n".join(rows)
