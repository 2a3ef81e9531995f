"""Search-space stage: spaces read from TOML files, and the one place that calls ``suggest_*``.

A space maps names of the vocabulary (``VOCABULARY``) to a fixed value, a list of choices, or an
int or float range. A grid space also enumerates its points: ``grid = "product"`` is every
combination of its choices, ``grid = "ofat"`` is its ``[baseline]`` plus one choice changed at a
time. The built-in designs ``ofat`` (15 points), ``full`` (3^7 = 2,187 points) and the default
space for samplers are files in ``search/spaces/`` read by the same code as a user's ``--space``.
"""

from __future__ import annotations

import itertools
import json
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from search.errors import UsageError
from search.study.vocabulary import BASELINE, NUMBERS, VOCABULARY, check_value

SPACES_DIR = Path(__file__).resolve().parent.parent / "spaces"  # search/spaces/*.toml
DESIGNS = ("ofat", "full")


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

    @property
    def is_grid(self) -> bool:
        return bool(self.points)

    def suggest(self, trial: Any) -> dict[str, Any]:
        """Ask the trial for every parameter (an enqueued grid point answers with its values)."""
        out: dict[str, Any] = {}
        for name, p in self.params.items():
            if isinstance(p, Fixed):  # recorded as a one-value choice, so it shows in params
                out[name] = trial.suggest_categorical(name, [p.value])
            elif isinstance(p, Choice):
                out[name] = trial.suggest_categorical(name, list(p.values))
            elif p.integer:
                out[name] = trial.suggest_int(name, int(p.low), int(p.high), log=p.log)
            else:
                out[name] = trial.suggest_float(name, p.low, p.high, log=p.log)
        return out

    def as_grid(self, where: str) -> Space:
        """A grid of every combination of the choices (for ``--sampler grid`` on any space)."""
        if self.is_grid:
            return self
        points = tuple(_grid(where, "product", self.params, self.baseline))
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
        epochs = self.params.get("epochs", Fixed(self.baseline["epochs"]))
        shortest = epochs.value if isinstance(epochs, Fixed) else _extreme(epochs, min)
        if longest >= shortest:
            raise UsageError(
                f"{where}: params.warmup_epochs: up to {longest} is not below the fewest "
                f"epochs of a run ({shortest}); give fewer warm-up epochs or more epochs"
            )

    def horizon(self, max_epochs: int | None) -> int:
        """The most epochs a trial of this space runs: where its schedules end and a pruner's
        maximum resource. A space without epochs runs the baseline's."""
        p = self.params.get("epochs", Fixed(self.baseline["epochs"]))
        if self.points:
            high = max(int(point.get("epochs", self.baseline["epochs"])) for point in self.points)
        elif isinstance(p, Fixed):
            high = int(p.value)
        else:
            high = int(max(p.values) if isinstance(p, Choice) else p.high)
        return high if max_epochs is None else min(high, max_epochs)

    def differs_from_baseline(self, point: dict[str, Any]) -> str:
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


def _extreme(p: Choice | Range, pick: Any) -> Any:
    """The smallest or largest value (``pick`` = min or max) a choice or range can take."""
    return pick(p.values) if isinstance(p, Choice) else pick(p.low, p.high)


def _param(where: str, name: str, raw: Any) -> Param:
    if isinstance(raw, list):
        if not raw:
            raise UsageError(f"{where}: empty choice list; give at least one value")
        for v in raw:
            check_value(where, name, v)
        return Choice(tuple(raw))
    if isinstance(raw, dict):
        unknown = set(raw) - {"low", "high", "log"}
        if unknown or not {"low", "high"} <= set(raw):
            raise UsageError(
                f"{where}: a range needs low and high (and optionally log), "
                f"got keys {', '.join(sorted(raw))}"
            )
        low, high, log = raw["low"], raw["high"], bool(raw.get("log", False))
        check_value(f"{where}.low", name, low)
        check_value(f"{where}.high", name, high)
        if low > high:
            raise UsageError(f"{where}: low {low} is above high {high}")
        if log and low <= 0:
            raise UsageError(f"{where}: a log range needs low > 0, got {low}")
        integer = isinstance(low, int) and isinstance(high, int) and NUMBERS[name][2] is int
        return Range(low, high, log, integer)
    check_value(where, name, raw)
    return Fixed(raw)


def _grid(where: str, kind: str, params: dict[str, Param], baseline: dict[str, Any]):
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


def load_space(path: str | Path) -> Space:
    """Read and check a space file; every problem is one ``UsageError`` naming the key."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise UsageError(f"--space {path}: cannot read the file ({e.strerror})") from None
    return parse_space(text, f"--space {path}", Path(path).stem)


def parse_space(text: str, where: str, default_name: str = "space") -> Space:
    """Check a space's TOML text; ``where`` starts every error message."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{where}: not valid TOML ({e})") from None
    unknown = set(raw) - {"name", "grid", "baseline", "params", "description"}
    if unknown:
        raise UsageError(
            f"{where}: unknown top-level key {sorted(unknown)[0]!r}; expected "
            "name, grid, baseline, params"
        )
    if not isinstance(raw.get("params"), dict) or not raw["params"]:
        raise UsageError(f"{where}: needs a [params] table with at least one name")
    params = {}
    for name, value in raw["params"].items():
        if name not in VOCABULARY:
            raise UsageError(
                f"{where}: params.{name}: unknown name; expected one of {', '.join(VOCABULARY)}"
            )
        params[name] = _param(f"{where}: params.{name}", name, value)
    baseline = {**BASELINE, **raw.get("baseline", {})}
    grid = raw.get("grid")
    if grid not in (None, "product", "ofat"):
        raise UsageError(f"{where}: grid: expected 'product' or 'ofat', got {grid!r}")
    points = tuple(_grid(where, grid, params, baseline)) if grid else ()
    space = Space(str(raw.get("name", default_name)), params, points, baseline, text, grid or "")
    space.check_warmup(where)
    return space


def design(name: str) -> Space:
    """A built-in space by name: ``ofat``, ``full`` or ``default``."""
    if name not in (*DESIGNS, "default"):
        raise UsageError(f"--design: expected one of {', '.join(DESIGNS)}, got {name!r}")
    return load_space(SPACES_DIR / f"{name}.toml")
