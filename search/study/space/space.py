"""Search-space stage: what a space is, and the one place that calls ``suggest_*``.

A space maps names of the vocabulary (``VOCABULARY``) to a fixed value, a list of choices, or an
int or float range. A grid space also enumerates its points: ``grid = "product"`` is every
combination of its choices, ``grid = "ofat"`` is its ``[baseline]`` plus one choice changed at a
time. Spaces are read from TOML files by ``search.study.space.spacefile``.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field, replace
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from search.errors import UsageError
from search.tasks.mlp.vocabulary import BASELINE, CONDITIONS, applies


@dataclass(frozen=True)
class Choice:
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Fixed:
    value: Any


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    log: bool = False
    integer: bool = False


Param = Choice | Fixed | Range


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def point_key(point: dict[str, Any]) -> str:
    """A canonical text for a grid point, equal for equal points."""
    return json.dumps(point, sort_keys=True)


@dataclass(frozen=True)
class Space:
    name: str
    params: dict[str, Param]
    points: tuple[dict[str, Any], ...] = ()  # the grid; empty for a space a sampler explores
    baseline: dict[str, Any] = field(default_factory=lambda: dict(BASELINE))
    source: str = ""  # the TOML text it was read from, stored with the study
    grid: str = ""  # how the points were made: "ofat", "product", or "" for no grid
    settings: dict[str, Any] = field(default_factory=dict)  # the file's [settings] table
    # A user task's space names its own parameters: no vocabulary, no conditions, and a
    # baseline only where its file gives one. False: the built-in MLP's vocabulary.
    open: bool = False
    objective: tuple[tuple[str, str], ...] = ()  # the file's [objective]: (metric, direction)

    @property
    def is_grid(self) -> bool:
        return bool(self.points)

    def distributions(self) -> dict[str, BaseDistribution]:
        """What Optuna records for each parameter: a fixed value as a one-value choice (so it
        shows in a trial's params), a choice, an int or a float range."""
        return {name: _distribution(p) for name, p in self.params.items()}

    def suggest(self, trial: Any) -> dict[str, Any]:
        """Ask the trial for every parameter that applies (an enqueued grid point answers with
        its values). Outside a grid, a parameter that only applies under another's value
        (``reg_strength`` under a regularization) is asked for only when it does, so a sampler
        never models, and importance never ranks, a value that changed nothing."""
        out: dict[str, Any] = {}
        dists = self.distributions()
        conditional = set()
        if not self.is_grid and not self.open:
            conditional = {n for n in dists if n in CONDITIONS}
        for name in [n for n in dists if n not in conditional] + sorted(conditional):
            d = dists[name]
            if name in conditional and not applies(name, out):
                continue
            if isinstance(d, CategoricalDistribution):
                out[name] = trial.suggest_categorical(name, list(d.choices))
            elif isinstance(d, IntDistribution):
                out[name] = trial.suggest_int(name, d.low, d.high, log=d.log)
            else:
                out[name] = trial.suggest_float(name, d.low, d.high, log=d.log)
        return out

    def as_grid(self, where: str) -> Space:
        """A grid of every combination of the choices (for ``--sampler grid`` on any space)."""
        if self.is_grid:
            return self
        points = tuple(grid_points(where, "product", self.params, self.baseline))
        return replace(self, points=points, grid="product")

    def without_grid(self) -> Space:
        """The same parameters for a sampler to explore, rather than points to enumerate."""
        return replace(self, points=(), grid="")

    def capped(self, max_epochs: int | None) -> Space:
        """Clip an epochs range to ``max_epochs`` so a sampler does not waste trials above it."""
        epochs = self.params.get("epochs")
        if max_epochs is None or not isinstance(epochs, Range) or epochs.high <= max_epochs:
            return self
        clipped = replace(epochs, low=min(epochs.low, max_epochs), high=max_epochs)
        return replace(self, params={**self.params, "epochs": clipped})

    def with_epochs(self, epochs: int | None) -> Space:
        """Every trial trains ``epochs`` epochs (the study's ``--epochs``), whatever the file
        says; None leaves the space's own epochs."""
        if epochs is None:
            return self
        return replace(self, params={**self.params, "epochs": Fixed(epochs)})

    def check_warmup(self, where: str) -> None:
        """A warm-up must end before the shortest run of the space does."""
        warm = self.params.get("warmup_epochs")
        if warm is None:
            return
        longest = warm.value if isinstance(warm, Fixed) else _extreme(warm, max)
        epochs = self.params.get("epochs", Fixed(self.baseline.get("epochs", 1)))
        shortest = epochs.value if isinstance(epochs, Fixed) else _extreme(epochs, min)
        if longest >= shortest:
            raise UsageError(
                f"{where}: params.warmup_epochs: up to {longest} is not below the fewest "
                f"epochs of a run ({shortest}); give fewer warm-up epochs or more epochs"
            )

    def largest(self, name: str) -> Any:
        """The largest value of ``name`` a trial of this space can take (the baseline's when
        the space leaves it out)."""
        if self.points:
            return max(point.get(name, self.baseline.get(name, 1)) for point in self.points)
        p = self.params.get(name, Fixed(self.baseline.get(name, 1)))
        return p.value if isinstance(p, Fixed) else _extreme(p, max)

    def horizon(self, max_epochs: int | None) -> int:
        """The most epochs a trial of this space runs: where its schedules end and a pruner's
        maximum resource."""
        high = int(self.largest("epochs"))
        return high if max_epochs is None else min(high, max_epochs)

    def check_batch_size(self, train_images: int, where: str) -> None:
        """A batch larger than the training set would silently train on fewer images."""
        largest = int(self.largest("batch_size"))
        if largest > train_images:
            raise UsageError(
                f"{where}: params.batch_size: up to {largest} is more than the {train_images:,} "
                f"training images; give a batch size of at most {train_images}"
            )

    def differs_from_baseline(self, point: dict[str, Any]) -> str:
        """A one-factor point by its change from the baseline; a product grid's point by its
        values of the parameters it varies."""
        if self.grid == "product":
            varied = [k for k, p in self.params.items() if isinstance(p, Choice)]
            shown = ", ".join(f"{k}={point[k]}" for k in varied if k in point)
            return shown or "the space's one point"
        diff = [
            f"{k}={v}" for k, v in point.items() if k in self.baseline and self.baseline[k] != v
        ]
        return ", ".join(diff) or "baseline"

    def describe(self, params: dict[str, Any]) -> str:
        """What a point is: its changes from the baseline on a grid, else the values searched
        (a value the space fixes is the same for every trial)."""
        if self.is_grid:
            return self.differs_from_baseline(params)
        fixed = {k for k, p in self.params.items() if isinstance(p, Fixed)}
        return ", ".join(f"{k}={_fmt(v)}" for k, v in params.items() if k not in fixed)


def _distribution(p: Param) -> BaseDistribution:
    if isinstance(p, Fixed):
        return CategoricalDistribution([p.value])
    if isinstance(p, Choice):
        return CategoricalDistribution(list(p.values))
    if p.integer:
        return IntDistribution(int(p.low), int(p.high), log=p.log)
    return FloatDistribution(float(p.low), float(p.high), log=p.log)


def _extreme(p: Choice | Range, pick: Any) -> Any:
    """The smallest or largest value (``pick`` = min or max) a choice or range can take."""
    return pick(p.values) if isinstance(p, Choice) else pick(p.low, p.high)


def grid_points(where: str, kind: str, params: dict[str, Param], baseline: dict[str, Any]):
    if any(isinstance(p, Range) for p in params.values()):
        raise UsageError(f"{where}: grid = {kind!r} needs choices or fixed values, not ranges")
    levels = {k: p.values if isinstance(p, Choice) else (p.value,) for k, p in params.items()}
    if kind == "product":
        combos = itertools.product(*levels.values())
        return [dict(zip(levels, combo, strict=True)) for combo in combos]
    for k, values in levels.items():
        if baseline.get(k) not in values:
            raise UsageError(f"{where}: baseline.{k} must be one of params.{k}")
    base = {k: baseline[k] for k in levels}
    points = [base]
    for k, values in levels.items():
        points += [{**base, k: v} for v in values if v != base[k]]
    return points
