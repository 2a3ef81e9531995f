"""Finding a task from ``--task``: the built-in MLP, a command, a file or a module.

``--task`` takes ``mlp`` (the default), ``cmd:COMMAND`` (``search.tasks.command``), a file
``path/to/task.py`` or a module ``package.module``, either with an optional ``:name`` of an
object in it that holds the task's functions. Every problem is one ``UsageError`` naming
``--task``: a missing file or name, no ``train``, a ``train`` that cannot take ``(params,
ctx)``, or an error while importing it. A study records the reference (a file's absolute path)
and a hash of the source, so that a worker or a resume runs the same code.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import shlex
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from search.errors import UsageError, first_line

BUILT_IN = "mlp"
COMMAND_PREFIX = "cmd:"
# Imported by name, as a user's module is, so that finding a task costs no torch import: the
# commands that only read a study load this module too.
MLP_MODULE = "search.tasks.mlp.task"
COMMAND_MODULE = "search.tasks.command"
DIRECTIONS = ("maximize", "minimize")


@dataclass(frozen=True)
class Task:
    """A loaded task: its functions, and what the service reads beside them."""

    ref: str  # what a study records: "mlp", "cmd:...", an absolute file path or a module
    name: str  # short, for default study names: the file's stem, the module's last part
    train: Callable[..., Any]
    load_data: Callable[..., Any] | None = None
    space_file: Path | None = None  # its default space
    objective: tuple[tuple[str, str], ...] = ()  # (metric, direction) pairs; () for none
    source_hash: str = ""  # sha256 of its source ("" for the built-in MLP)

    @property
    def built_in(self) -> bool:
        return self.ref == BUILT_IN


def load_task(ref: str | None, where: str = "--task") -> Task:
    """The task ``ref`` names (None: the built-in MLP)."""
    ref = (ref or BUILT_IN).strip()
    if ref == BUILT_IN:
        mlp = importlib.import_module(MLP_MODULE)
        return _from_object(mlp, BUILT_IN, BUILT_IN, Path(mlp.__file__ or ""), where)
    if ref.startswith(COMMAND_PREFIX):
        command: Any = importlib.import_module(COMMAND_MODULE)
        return command.command_task(ref[len(COMMAND_PREFIX) :], where)
    target, _, name = ref.partition(":") if not _is_windows_drive(ref) else (ref, "", "")
    if target.endswith(".py") or "/" in target or Path(target).exists():
        module, file, shown = _import_file(Path(target), where)
        ref = str(file) + (f":{name}" if name else "")
    else:
        module, shown = _import_module(target, where), target
        file = Path(module.__file__ or "")
    obj: Any = module
    if name:
        if not hasattr(module, name):
            found = ", ".join(n for n in vars(module) if not n.startswith("_"))[:200]
            raise UsageError(f"{where} {ref}: {shown} has no {name!r} (it has: {found})")
        obj = getattr(module, name)
    return _from_object(obj, ref, name or file.stem or target.rpartition(".")[2], file, where)


def _is_windows_drive(ref: str) -> bool:
    return len(ref) > 2 and ref[1] == ":" and ref[2] in "/\\"


def _import_file(path: Path, where: str) -> tuple[ModuleType, Path, str]:
    if not path.is_file():
        raise UsageError(
            f"{where} {path}: no such file; give a task file (path/to/task.py), a module "
            f"(package.module) or {BUILT_IN}"
        )
    file = path.resolve()
    digest = hashlib.sha1(str(file).encode()).hexdigest()[:8]
    spec = importlib.util.spec_from_file_location(f"search_task_{file.stem}_{digest}", file)
    if spec is None or spec.loader is None:
        raise UsageError(f"{where} {path}: not a Python file Python can import")
    module = importlib.util.module_from_spec(spec)
    if str(file.parent) not in sys.path:  # so the task can import the modules beside it
        sys.path.insert(0, str(file.parent))
    sys.modules[spec.name] = module  # dataclasses and pickling look a module up by name
    _run_import(lambda: spec.loader.exec_module(module), f"{where} {path}")
    return module, file, str(path)


def _import_module(name: str, where: str) -> ModuleType:
    if not name or not all(part.isidentifier() for part in name.split(".")):
        raise UsageError(f"{where} {name}: not a file, a module name or {BUILT_IN}")
    try:
        found = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise UsageError(f"{where} {name}: no such file or module (is it on PYTHONPATH?)")
    return _run_import(lambda: importlib.import_module(name), f"{where} {name}")


def _run_import(load: Callable[[], Any], where: str) -> Any:
    try:
        return load()
    except Exception as e:  # noqa: BLE001 - a task's own error, shown as its one line
        frame = traceback.extract_tb(e.__traceback__)[-1]
        reason = first_line(e)
        raise UsageError(
            f"{where}: importing it failed at {Path(frame.filename).name}:{frame.lineno}: "
            f"{type(e).__name__}: {reason}".rstrip(": ")
        ) from None


def _from_object(obj: Any, ref: str, name: str, file: Path, where: str) -> Task:
    shown = f"{where} {ref}"
    train = getattr(obj, "train", None)
    if not callable(train):
        raise UsageError(
            f"{shown}: no train function; define train(params, ctx) returning a dict of metrics"
        )
    _check_signature(train, 2, f"{shown}: train", "train(params, ctx)")
    load_data = getattr(obj, "load_data", None)
    if load_data is not None:
        if not callable(load_data):
            raise UsageError(f"{shown}: load_data is not a function; define load_data(ctx)")
        _check_signature(load_data, 1, f"{shown}: load_data", "load_data(ctx)")
    return Task(
        ref=ref,
        name=name,
        train=train,
        load_data=load_data,
        space_file=_space_file(obj, file, shown),
        objective=parse_objective(getattr(obj, "OBJECTIVE", ()), f"{shown}: OBJECTIVE"),
        source_hash="" if ref == BUILT_IN else source_hash(file),
    )


def _check_signature(fn: Callable[..., Any], n: int, where: str, expected: str) -> None:
    try:
        signature = inspect.signature(fn)
        signature.bind(*([None] * n))
    except TypeError:
        bare = signature.replace(  # the names a user wrote, without the type hints
            parameters=[p.replace(annotation=p.empty) for p in signature.parameters.values()],
            return_annotation=signature.empty,
        )
        raise UsageError(f"{where}: expected {expected}, got {fn.__name__}{bare}") from None
    except ValueError:  # a builtin without a signature: let the call tell
        return


def _space_file(obj: Any, file: Path, where: str) -> Path | None:
    named = getattr(obj, "SPACE", None)
    if named is None:
        beside = file.with_suffix(".toml")
        return beside if beside.is_file() else None
    path = Path(named) if Path(named).is_absolute() else file.parent / str(named)
    if not path.is_file():
        raise UsageError(f"{where}: SPACE = {named!r}: no such file {path}")
    return path


def parse_objective(raw: Any, where: str) -> tuple[tuple[str, str], ...]:
    """``("metric", "direction")`` or a list of them, checked."""
    if raw in ((), [], None):
        return ()
    pairs = [raw] if isinstance(raw, tuple | list) and raw and isinstance(raw[0], str) else raw
    out = []
    for pair in pairs:
        if (
            not isinstance(pair, tuple | list)
            or len(pair) != 2
            or not isinstance(pair[0], str)
            or pair[1] not in DIRECTIONS
        ):
            raise UsageError(
                f"{where}: expected (metric, 'maximize' or 'minimize') or a list of them, "
                f"got {raw!r}"
            )
        out.append((pair[0], pair[1]))
    return tuple(out)


def source_hash(*files: Path) -> str:
    """sha256 of the files' bytes, in order; a missing file counts as empty."""
    h = hashlib.sha256()
    for f in files:
        h.update(f.read_bytes() if f.is_file() else b"")
    return h.hexdigest()


def command_files(command: str) -> list[Path]:
    """The files a command names that exist here (its script), for its source hash."""
    try:
        words = shlex.split(command)
    except ValueError:
        return []
    return [Path(w) for w in words if "{" not in w and Path(w).is_file()]
