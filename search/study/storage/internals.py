"""Every use of a private Optuna API, in one place, each with why no public API serves.

``pyproject.toml`` bounds Optuna below its next major version, and
``tests/test_architecture.py`` calls each of these on a real study, so an upgrade that
removes one fails there, naming this module, before a worker does.
"""

from __future__ import annotations

import optuna
from optuna.storages import BaseStorage, RDBStorage
from optuna.trial import FrozenTrial


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
