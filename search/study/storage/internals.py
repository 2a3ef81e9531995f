"""Every use of a private Optuna API, in one place, each with why no public API serves.

``pyproject.toml`` bounds Optuna below its next major version; ``missing()`` names any of
these that an upgrade removed, and ``tests/test_architecture.py`` fails with this module's
name when one is gone, before a worker does.
"""

from __future__ import annotations

import importlib
from typing import Any

import optuna
from optuna.storages import BaseStorage, RDBStorage
from optuna.trial import FrozenTrial

# (module, attribute path) of every private name used below.
USED = (
    ("optuna.study", "Study._storage"),
    ("optuna.study", "Study._study_id"),
    ("optuna.trial", "Trial._trial_id"),
    ("optuna.trial", "FrozenTrial._trial_id"),
    ("optuna.storages._cached_storage", "_CachedStorage._backend"),
)


def storage_of(study: optuna.Study) -> BaseStorage:
    """The storage a study writes to. Study has no public accessor; claims need it to change a
    WAITING trial's state by id, which no public Study method does."""
    return study._storage


def rdb(study: optuna.Study) -> RDBStorage:
    """The RDBStorage behind a study, unwrapped from Optuna's trial cache, for raw queries,
    heartbeats and locks on its engine."""
    storage = study._storage
    return getattr(storage, "_backend", storage)


def study_id(study: optuna.Study) -> int:
    """The study's row id, for queries on its trials (the public API loads every trial)."""
    return study._study_id


def trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    """A trial's row id: the storage's methods take it, and only it (not the number)."""
    return trial._trial_id


def missing() -> list[str]:
    """The private names of ``USED`` that the installed Optuna no longer has."""
    gone = []
    for module_name, path in USED:
        try:
            obj: Any = importlib.import_module(module_name)
        except ImportError:
            gone.append(f"{module_name}.{path}")
            continue
        owner, _, attr = path.rpartition(".")
        for part in filter(None, owner.split(".")):
            obj = getattr(obj, part, None)
        if obj is None or not _has(obj, attr):
            gone.append(f"{module_name}.{path}")
    return gone


def _has(cls: Any, attr: str) -> bool:
    """An attribute of the class, or one its instances set in ``__init__`` (read from the
    source, since an instance needs a database)."""
    import inspect

    if hasattr(cls, attr):
        return True
    try:
        return f"self.{attr}" in inspect.getsource(cls)
    except (OSError, TypeError):
        return False
