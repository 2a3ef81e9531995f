"""Samplers and pruners: registries of seeded factories, shared by the CLI and the tests.

``grid`` runs a design's points as enqueued trials (see ``search.runner``); the sampler behind
it only answers for parameters a point leaves open, so a seeded random sampler does.
"""

from __future__ import annotations

from collections.abc import Callable

import optuna

SAMPLERS: dict[str, Callable[[int], optuna.samplers.BaseSampler]] = {
    "grid": lambda seed: optuna.samplers.RandomSampler(seed=seed),
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
    "tpe": lambda seed: optuna.samplers.TPESampler(seed=seed),
}

PRUNERS: dict[str, Callable[[], optuna.pruners.BasePruner]] = {
    "none": optuna.pruners.NopPruner,
    "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1),
}

DEFAULT_PRUNER = {"grid": "none", "random": "median", "tpe": "median"}


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    return SAMPLERS[name](seed)


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    return PRUNERS[name]()
