"""Raw queries on Optuna's tables, where loading every trial through the API would be slow.

Optuna's schema has been stable since v1; these are the only places that read it directly
(through ``search.study.internals``).
"""

from __future__ import annotations

from collections import Counter

import optuna
import sqlalchemy
from optuna.trial import TrialState

from search.study.internals import rdb, study_id, trial_model

__all__ = ["rdb", "state_counts", "trial_ids"]


def trial_ids(
    study: optuna.Study, states: tuple[TrialState, ...], limit: int | None = None
) -> list[int]:
    """Ids of the study's trials in ``states``, oldest first, from one indexed query.

    ``study.get_trials`` would load every such trial with its attributes; on a 2,187-point grid
    that is most of a second, for each claim.
    """
    TrialModel = trial_model()  # noqa: N806 - a table class
    query = (
        sqlalchemy.select(TrialModel.trial_id)
        .where(TrialModel.study_id == study_id(study), TrialModel.state.in_(states))
        .order_by(TrialModel.trial_id)
        .limit(limit)
    )
    with rdb(study).engine.connect() as con:
        return list(con.execute(query).scalars())


def state_counts(study: optuna.Study) -> Counter[str]:
    """How many of the study's trials are in each state, by name, from one query."""
    TrialModel = trial_model()  # noqa: N806 - a table class
    query = (
        sqlalchemy.select(TrialModel.state, sqlalchemy.func.count())
        .where(TrialModel.study_id == study_id(study))
        .group_by(TrialModel.state)
    )
    with rdb(study).engine.connect() as con:
        return Counter({state.name: n for state, n in con.execute(query)})
