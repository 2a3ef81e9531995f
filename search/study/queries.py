"""Raw queries on Optuna's tables, where loading every trial through the API would be slow.

Optuna's schema (``optuna.storages._rdb.models``) has been stable since v1; these are the only
places that read it directly.
"""

from __future__ import annotations

from collections import Counter

import optuna
import sqlalchemy
from optuna.storages import RDBStorage
from optuna.trial import TrialState


def rdb(study: optuna.Study) -> RDBStorage:
    """The RDBStorage behind a study (Optuna wraps it in a cache)."""
    storage = study._storage
    return getattr(storage, "_backend", storage)


def trial_ids(
    study: optuna.Study, states: tuple[TrialState, ...], limit: int | None = None
) -> list[int]:
    """Ids of the study's trials in ``states``, oldest first, from one indexed query.

    ``study.get_trials`` would load every such trial with its attributes; on a 2,187-point grid
    that is most of a second, for each claim.
    """
    from optuna.storages._rdb.models import TrialModel

    query = (
        sqlalchemy.select(TrialModel.trial_id)
        .where(TrialModel.study_id == study._study_id, TrialModel.state.in_(states))
        .order_by(TrialModel.trial_id)
        .limit(limit)
    )
    with rdb(study).engine.connect() as con:
        return list(con.execute(query).scalars())


def state_counts(study: optuna.Study) -> Counter[str]:
    """How many of the study's trials are in each state, by name, from one query."""
    from optuna.storages._rdb.models import TrialModel

    query = (
        sqlalchemy.select(TrialModel.state, sqlalchemy.func.count())
        .where(TrialModel.study_id == study._study_id)
        .group_by(TrialModel.state)
    )
    with rdb(study).engine.connect() as con:
        return Counter({state.name: n for state, n in con.execute(query)})
