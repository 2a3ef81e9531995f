"""Samplers and pruners: registries of seeded factories, shared by the CLI and the tests.

``grid`` runs a space's points as enqueued trials (see ``search.study.running.runner``); the
sampler behind it only answers for parameters a point leaves open, so a seeded random sampler does.
Every other sampler explores the space's ranges and choices; ``nsga2`` is for several objectives.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable
from typing import TypeVar

import optuna

from search.errors import UsageError
from search.study.storage.trials import state_counts

T = TypeVar("T")


def _quiet(factory: Callable[[], T]) -> T:
    # GP, QMC, CMA-ES and the patient pruner are flagged experimental, and CMA-ES warns about
    # each categorical parameter it leaves to its independent sampler: noise for a user.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return factory()


# Trials a model-based sampler draws at random before its model takes over (Optuna's defaults;
# NSGA-II's first generation is random): before then every sampler gives the same trials.
STARTUP = {"tpe": 10, "gp": 10, "nsga2": 50}

SAMPLERS: dict[str, Callable[[int], optuna.samplers.BaseSampler]] = {
    "grid": lambda seed: optuna.samplers.RandomSampler(seed=seed),
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
    "tpe": lambda seed: optuna.samplers.TPESampler(seed=seed, n_startup_trials=STARTUP["tpe"]),
    "gp": lambda seed: _quiet(
        lambda: optuna.samplers.GPSampler(seed=seed, n_startup_trials=STARTUP["gp"])
    ),
    "qmc": lambda seed: _quiet(lambda: optuna.samplers.QMCSampler(seed=seed, scramble=True)),
    "cmaes": lambda seed: _quiet(
        lambda: optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    ),
    "nsga2": lambda seed: optuna.samplers.NSGAIISampler(
        seed=seed, population_size=STARTUP["nsga2"]
    ),
}
# Samplers that handle several objectives (CMA-ES does not); a grid runs its points and
# records every objective, so its summary is a Pareto front too.
MULTI_OBJECTIVE = ("nsga2", "tpe", "random", "gp", "qmc", "grid")
# The packages each sampler needs beyond Optuna: the ``samplers`` extra of pyproject.toml.
NEEDS = {"gp": "scipy", "qmc": "scipy", "cmaes": "cmaes"}
# A pruner compares trials after their first fifth of the epochs at the earliest: with a
# warm-up and a decaying rate, the first epochs reward fast starters, not good finishers.
PRUNER_FIRST_SHARE = 5


def first_rung(horizon: int) -> int:
    """The epoch at which a pruner of a study of ``horizon`` epochs first compares trials."""
    return max(1, horizon // PRUNER_FIRST_SHARE)


# Pruners read the validation accuracy each epoch reports. Each is made for a horizon: the most
# epochs a trial of the study runs (Hyperband's maximum resource).
PRUNERS: dict[str, Callable[[int], optuna.pruners.BasePruner]] = {
    "none": lambda horizon: optuna.pruners.NopPruner(),
    "median": lambda horizon: optuna.pruners.MedianPruner(
        n_startup_trials=5, n_warmup_steps=first_rung(horizon)
    ),
    "hyperband": lambda horizon: optuna.pruners.HyperbandPruner(
        min_resource=first_rung(horizon), max_resource=horizon, reduction_factor=3
    ),
    "sha": lambda horizon: optuna.pruners.SuccessiveHalvingPruner(
        min_resource=first_rung(horizon), reduction_factor=3
    ),
    "patient": lambda horizon: _quiet(
        lambda: optuna.pruners.PatientPruner(
            optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=first_rung(horizon)),
            patience=2,
        )
    ),
}
DEFAULT_PRUNER = {
    "grid": "none",
    "random": "median",
    "qmc": "median",
    "tpe": "hyperband",
    "gp": "hyperband",
    "cmaes": "median",
    "nsga2": "none",
}


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    if name not in SAMPLERS:
        raise UsageError(f"--sampler: expected one of {', '.join(SAMPLERS)}, got {name!r}")
    if name in NEEDS and importlib.util.find_spec(NEEDS[name]) is None:
        raise UsageError(
            f"--sampler {name}: needs the {NEEDS[name]} package; "
            "pip install 'search[samplers]', or choose --sampler tpe"
        )
    return SAMPLERS[name](seed)


def startup_note(study: optuna.Study, sampler: str) -> str:
    """ " (tpe's random start-up: 3 of 10 trials)" while a sampler has not yet used its model,
    else ""."""
    if sampler not in STARTUP:
        return ""
    counts = state_counts(study)
    finished = counts["COMPLETE"] + counts["PRUNED"]
    if finished > STARTUP[sampler]:
        return ""
    return f" ({sampler}'s random start-up: {finished} of {STARTUP[sampler]} trials)"


def make_pruner(name: str, horizon: int) -> optuna.pruners.BasePruner:
    """The pruner ``name`` for trials of at most ``horizon`` epochs."""
    if name not in PRUNERS:
        raise UsageError(f"--pruner: expected one of {', '.join(PRUNERS)}, got {name!r}")
    return PRUNERS[name](horizon)
