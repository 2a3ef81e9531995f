"""Space files: the TOML a user writes (``--space FILE.toml``), read and checked into a ``Space``.

Every problem is one ``UsageError`` that names the key. The built-in designs ``ofat`` (15
points), ``full`` (3^7 = 2,187 points) and the default space for samplers are files in
``search/spaces/`` read by the same code. An optional ``[settings]`` table records the study
settings a space was measured with (``search.best`` writes one); options on the command line
win over it.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

from search.engine.config import PRECISION_SETTINGS as PRECISIONS
from search.engine.datasets import DATASETS
from search.engine.history import JUDGES
from search.errors import UsageError
from search.study.space.space import Choice, Fixed, Param, Range, Space, grid_points
from search.tasks.mlp.vocabulary import BASELINE, NUMBERS, VOCABULARY, check_value

SPACES_DIR = Path(__file__).resolve().parents[2] / "spaces"  # search/spaces/*.toml
DESIGNS = ("ofat", "full")
TOP_LEVEL = ("name", "description", "grid", "baseline", "params", "settings", "objective")
# The [settings] a file may carry, each with a check and what it expects.
FILE_SETTINGS: dict[str, tuple[Any, str]] = {
    "dataset": (lambda v: v in DATASETS, f"one of {', '.join(DATASETS)}"),
    "seed": (lambda v: _whole(v) and 0 <= v < 2**32, "a whole number from 0 to 2**32 - 1"),
    "val_size": (lambda v: _whole(v) and v >= 1, "a positive whole number"),
    "train_limit": (lambda v: _whole(v) and v >= 1, "a positive whole number"),
    "judge_epoch": (lambda v: v in JUDGES, f"one of {', '.join(JUDGES)}"),
    "precision": (lambda v: v in PRECISIONS, f"one of {', '.join(PRECISIONS)}"),
}


def _whole(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _open_value(where: str, name: str, value: Any) -> None:
    """A value of a user task's parameter: text, a truth value or a finite number."""
    if not isinstance(value, str | bool | int | float):
        raise UsageError(f"{where}: expected a number, text or true/false, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise UsageError(f"{where}: expected a finite number, got {value!r}")


def _param(where: str, name: str, raw: Any, open_: bool) -> Param:
    check = _open_value if open_ else check_value
    if isinstance(raw, list):
        if not raw:
            raise UsageError(f"{where}: empty choice list; give at least one value")
        for v in raw:
            check(where, name, v)
        return Choice(tuple(raw))
    if isinstance(raw, dict):
        unknown = set(raw) - {"low", "high", "log"}
        if unknown or not {"low", "high"} <= set(raw):
            raise UsageError(
                f"{where}: a range needs low and high (and optionally log), "
                f"got keys {', '.join(sorted(raw))}"
            )
        low, high, log = raw["low"], raw["high"], bool(raw.get("log", False))
        for end, value in (("low", low), ("high", high)):
            check(f"{where}.{end}", name, value)
            if isinstance(value, str | bool):
                raise UsageError(f"{where}.{end}: a range needs numbers, got {value!r}")
        if low > high:
            raise UsageError(f"{where}: low {low} is above high {high}")
        if log and low <= 0:
            raise UsageError(f"{where}: a log range needs low > 0, got {low}")
        integer = isinstance(low, int) and isinstance(high, int)
        return Range(low, high, log, integer and (open_ or NUMBERS[name][2] is int))
    check(where, name, raw)
    return Fixed(raw)


def load_space(path: str | Path, open_: bool = False) -> Space:
    """Read and check a space file; every problem is one ``UsageError`` naming the key.
    ``open_``: a user task's space, whose names are its own (``Space.open``)."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise UsageError(f"--space {path}: cannot read the file ({e.strerror})") from None
    return parse_space(text, f"--space {path}", Path(path).stem, open_)


def parse_space(text: str, where: str, default_name: str = "space", open_: bool = False) -> Space:
    """Check a space's TOML text; ``where`` starts every error message."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{where}: not valid TOML ({e})") from None
    unknown = set(raw) - set(TOP_LEVEL)
    if unknown:
        raise UsageError(
            f"{where}: unknown top-level key {sorted(unknown)[0]!r}; expected "
            f"{', '.join(TOP_LEVEL)}"
        )
    if not isinstance(raw.get("params"), dict) or not raw["params"]:
        raise UsageError(f"{where}: needs a [params] table with at least one name")
    params = {}
    for name, value in raw["params"].items():
        if not open_:
            _known(where, "params", name)
        params[name] = _param(f"{where}: params.{name}", name, value, open_)
    for name, value in _table(where, raw, "baseline").items():
        if open_:
            _open_value(f"{where}: baseline.{name}", name, value)
            continue
        _known(where, "baseline", name)
        check_value(f"{where}: baseline.{name}", name, value)
    if not open_ and "lr" in params and "lr_factor" in params:
        raise UsageError(
            f"{where}: params.lr and params.lr_factor: give one; lr_factor scales the "
            "optimizer's usual rate, and lr would override it"
        )
    baseline = {**({} if open_ else BASELINE), **raw.get("baseline", {})}
    grid = raw.get("grid")
    if grid not in (None, "product", "ofat"):
        raise UsageError(f"{where}: grid: expected 'product' or 'ofat', got {grid!r}")
    points = tuple(grid_points(where, grid, params, baseline)) if grid else ()
    space = Space(
        str(raw.get("name", default_name)),
        params,
        points,
        baseline,
        text,
        grid or "",
        _settings(where, _table(where, raw, "settings")),
        open_,
        _objective(where, raw.get("objective"), open_),
    )
    space.check_warmup(where)
    return space


def _objective(where: str, raw: Any, open_: bool) -> tuple[tuple[str, str], ...]:
    """``[objective]`` (metric and direction), or ``[[objective]]`` for several."""
    if raw is None:
        return ()
    if not open_:
        raise UsageError(
            f"{where}: objective: the built-in MLP's objectives come from --objectives "
            "(accuracy, optionally with seconds or params)"
        )
    tables = raw if isinstance(raw, list) else [raw]
    out = []
    for table in tables:
        if (
            not isinstance(table, dict)
            or set(table) != {"metric", "direction"}
            or not isinstance(table["metric"], str)
            or table["direction"] not in ("maximize", "minimize")
        ):
            raise UsageError(
                f"{where}: objective: expected metric = NAME and direction = 'maximize' or "
                f"'minimize', got {table!r}"
            )
        out.append((table["metric"], table["direction"]))
    return tuple(out)


def _table(where: str, raw: dict[str, Any], key: str) -> dict[str, Any]:
    table = raw.get(key, {})
    if not isinstance(table, dict):
        raise UsageError(f"{where}: {key}: expected a table ([{key}]), got {table!r}")
    return table


def _known(where: str, table: str, name: str) -> None:
    if name not in VOCABULARY:
        raise UsageError(
            f"{where}: {table}.{name}: unknown name; expected one of {', '.join(VOCABULARY)}"
        )


def _settings(where: str, table: dict[str, Any]) -> dict[str, Any]:
    """The file's [settings]: each a known name with a valid value."""
    for key, value in table.items():
        if key not in FILE_SETTINGS:
            raise UsageError(
                f"{where}: settings.{key}: unknown setting; expected one of "
                f"{', '.join(FILE_SETTINGS)}"
            )
        ok, expected = FILE_SETTINGS[key]
        if not ok(value):
            raise UsageError(f"{where}: settings.{key}: expected {expected}, got {value!r}")
    return dict(table)


def design(name: str) -> Space:
    """A built-in space by name: ``ofat``, ``full`` or ``default``."""
    if name not in (*DESIGNS, "default"):
        raise UsageError(f"--design: expected one of {', '.join(DESIGNS)}, got {name!r}")
    return load_space(SPACES_DIR / f"{name}.toml")
