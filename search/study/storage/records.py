"""Trial records: every key the service keeps on a trial, and where it keeps it.

Two homes, so that Optuna's own tools stay usable on our studies:
- Optuna's user attributes hold the few small facts an analyst filters on: the trial's grid
  point, its owner, its epochs, images, seconds, final metrics, judged epoch and why it ended.
  They become columns of ``study.trials_dataframe()`` and show in ``optuna best-trial`` and
  optuna-dashboard.
- The table ``search_records``, in the same database, holds what is bulky or repeated: every
  reported epoch, the learning curve, the run's configuration, each claim of the trial, and
  its checkpoint. Never a column, never printed by the Optuna CLI, and still in the database,
  so every chart can be redrawn from it alone.
Trials stored before the table existed kept their history and claims in user attributes;
the readers here read those too.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

import optuna
import sqlalchemy
from optuna.trial import FrozenTrial, Trial, TrialState

from search.study.storage.internals import rdb, study_id, trial_id

# User attributes of a trial (small; columns of trials_dataframe).
POINT = "point"  # a grid point's id (search.study.space.space.point_key)
WORKER = "worker"  # the process that claimed it: host, pid, worker id
EPOCHS = "epochs"  # the epoch budget it ran with, caps included
EPOCHS_RUN = "epochs_run"  # epochs it reported (a pruner or a stop may end it early)
TRAIN_IMAGES = "train_images"  # training examples it saw per epoch
SECONDS = "seconds"  # the training run, timed (the MLP: after an untimed warm-up)
N_PARAMS = "n_params"
METRICS = "metrics"  # the final metrics train returned (the MLP: its judged epoch's)
JUDGE = "judge"  # the MLP: which epoch judges a run, "last" or "best"
JUDGED_EPOCH = "judged_epoch"
REASON = "reason"  # why a complete or pruned trial ended as it did
FAIL_REASON = "fail_reason"  # why it failed, one line
FAIL_KIND = "fail_kind"  # FailKind: whose failure it was
RESUME_OF = "resume_of"  # a sampler's requeued point: the interrupted trial's number
RESUMED_FROM = "resumed_from"  # {"trial": number, "epoch": epoch} it went on from
KEPT_FROM = "kept_from_trial"  # finished after it was failed as stale: the failed trial
WARM_START = "warm_start"  # where a queued warm-start point came from
SMALL = (EPOCHS, EPOCHS_RUN, TRAIN_IMAGES, SECONDS, N_PARAMS, JUDGE, JUDGED_EPOCH)

# User attributes of a study (search.study.storage.opening writes them when it makes the study).
SETTINGS = "settings"  # StudySettings: what makes its results comparable
SPACE_TOML = "space_toml"  # the space file's text
COMMAND = "command"  # the command that made it, passwords hidden
VERSIONS = "versions"  # Python, the platform and the packages that decide a result
BUDGET = "budget"  # the trial budget the last search.run set
SPACE_CHANGES = "space_changes"  # each accepted change of its space (--allow-space-change)
TASK_HASH = "task_hash"  # sha256 of the task's source, as the study last ran it
TASK_CHANGES = "task_changes"  # each accepted change of the task's source
UID = "uid"  # a random id drawn when it was made: the name of its trials' folder
FINAL = "final"  # the final step's record (search.final)
OLD_HISTORY = "history"  # where trials kept their epochs before the records table

# Kinds of rows in search_records.
EPOCH = "epoch"  # one per reported epoch: {"epoch": n, metric: value, ...}
CURVE = "curve"  # the MLP's training loss against samples seen: [[samples, loss], ...]
CONFIG = "config"  # the MLP's model and trainer configurations
CLAIM = "claim"  # one per execution: host, pid, worker id, when, sampler
CHECKPOINT = "checkpoint"  # {"file": path in the artifact folder, "epoch": last kept}
RUN = "run"  # the MLP: how it ran (device, training step, peak GPU memory)
OLD_CLAIM_PREFIX = "claim:"  # where claims were kept before the table

_META = sqlalchemy.MetaData()
TABLE = sqlalchemy.Table(
    "search_records",
    _META,
    sqlalchemy.Column("id", sqlalchemy.Integer, primary_key=True, autoincrement=True),
    sqlalchemy.Column("study_id", sqlalchemy.Integer, nullable=False, index=True),
    sqlalchemy.Column("trial_id", sqlalchemy.Integer, nullable=False, index=True),
    sqlalchemy.Column("kind", sqlalchemy.String(32), nullable=False),
    sqlalchemy.Column("value", sqlalchemy.Text, nullable=False),
)


def create_table(engine: sqlalchemy.Engine) -> None:
    """Make the table if the database has none (a writer opening the storage does)."""
    _META.create_all(engine, checkfirst=True)


def add(study: optuna.Study, trial: Trial | FrozenTrial | int, kind: str, value: Any) -> None:
    """Append one row of ``kind`` to the trial's records."""
    row = trial if isinstance(trial, int) else trial_id(trial)
    with rdb(study).engine.begin() as con:
        con.execute(
            TABLE.insert().values(
                study_id=study_id(study), trial_id=row, kind=kind, value=json.dumps(value)
            )
        )


def put(study: optuna.Study, trial: Trial | FrozenTrial | int, kind: str, value: Any) -> None:
    """Set the trial's one row of ``kind`` (replacing any earlier one), in one transaction."""
    row = trial if isinstance(trial, int) else trial_id(trial)
    where = (TABLE.c.trial_id == row) & (TABLE.c.kind == kind)
    with rdb(study).engine.begin() as con:
        con.execute(TABLE.delete().where(where))
        con.execute(
            TABLE.insert().values(
                study_id=study_id(study), trial_id=row, kind=kind, value=json.dumps(value)
            )
        )


def copy(
    study: optuna.Study, source: FrozenTrial, target: FrozenTrial, kinds: Iterable[str]
) -> None:
    """Give ``target`` the rows of ``kinds`` that ``source`` has (a trial kept as new)."""
    found = rows(study, kinds, source).get(trial_id(source), {})
    for kind, values in found.items():
        for value in values:
            add(study, target, kind, value)


def rows(
    study: optuna.Study, kinds: Iterable[str], trial: Trial | FrozenTrial | None = None
) -> dict[int, dict[str, list[Any]]]:
    """{trial id: {kind: [values, oldest first]}} for the study (or one trial), one query.
    A database without the table (read-only, or from before it) has no rows."""
    query = sqlalchemy.select(TABLE.c.trial_id, TABLE.c.kind, TABLE.c.value).where(
        TABLE.c.study_id == study_id(study), TABLE.c.kind.in_(list(kinds))
    )
    if trial is not None:
        query = query.where(TABLE.c.trial_id == trial_id(trial))
    out: dict[int, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    try:
        with rdb(study).engine.connect() as con:
            for row, kind, value in con.execute(query.order_by(TABLE.c.id)):
                out[row][kind].append(json.loads(value))
    except sqlalchemy.exc.DBAPIError:  # no such table: a study from before it, read-only
        return {}
    return out


def history(study: optuna.Study, t: Trial | FrozenTrial) -> list[dict[str, Any]]:
    """Every epoch the trial reported, in order."""
    found = rows(study, (EPOCH,), t).get(trial_id(t), {}).get(EPOCH)
    return found if found is not None else list(t.user_attrs.get(OLD_HISTORY) or [])


def config(study: optuna.Study, t: FrozenTrial) -> dict[str, Any]:
    """The MLP's configurations the trial ran with ({} for a task's trial)."""
    found = rows(study, (CONFIG,), t).get(trial_id(t), {}).get(CONFIG)
    return found[-1] if found else dict(t.user_attrs.get("config") or {})


class Runs:
    """The records of a study's trials, loaded in one query, for views over many trials."""

    def __init__(self, study: optuna.Study) -> None:
        self._rows = rows(study, (EPOCH, CURVE, CLAIM, CONFIG, RUN))

    def _of(self, t: FrozenTrial, kind: str) -> list[Any]:
        return self._rows.get(trial_id(t), {}).get(kind, [])

    def history(self, t: FrozenTrial) -> list[dict[str, Any]]:
        return self._of(t, EPOCH) or list(t.user_attrs.get(OLD_HISTORY) or [])

    def curve(self, t: FrozenTrial) -> list[list[float]]:
        found = self._of(t, CURVE)
        return found[-1] if found else list(t.user_attrs.get("train_curve") or [])

    def config(self, t: FrozenTrial) -> dict[str, Any]:
        found = self._of(t, CONFIG)
        return found[-1] if found else dict(t.user_attrs.get("config") or {})

    def run(self, t: FrozenTrial) -> dict[str, Any]:
        """How the MLP ran: device, training step, GPU memory."""
        found = self._of(t, RUN)
        return found[-1] if found else {}

    def claims(self, t: FrozenTrial) -> list[dict[str, Any]]:
        """One per execution of the trial, oldest first."""
        old = [v for k, v in t.user_attrs.items() if k.startswith(OLD_CLAIM_PREFIX)]
        return sorted(old + self._of(t, CLAIM), key=lambda c: c["at"])


def claims_of(study: optuna.Study, t: FrozenTrial) -> list[dict[str, Any]]:
    """Every claim of one trial, oldest first: one per execution."""
    old = [v for k, v in t.user_attrs.items() if k.startswith(OLD_CLAIM_PREFIX)]
    found = rows(study, (CLAIM,), t).get(trial_id(t), {}).get(CLAIM, [])
    return sorted(old + found, key=lambda c: c["at"])


class FailKind(StrEnum):
    """Whose failure a failed trial was: the run's own (it counts, and three in a row stop
    the study), or an interruption (Ctrl-C, SIGTERM, a dead worker: its point runs again)."""

    ERROR = "error"
    INTERRUPTED = "interrupted"


def failure(kind: FailKind, reason: str) -> dict[str, str]:
    """The user attributes of a failed trial, for its writer to set."""
    return {FAIL_KIND: kind.value, FAIL_REASON: reason}


# The reason of a trial failed by Optuna's heartbeat check, which records none.
STALE_REASON = "interrupted: its heartbeat stopped (failed as stale)"


def fail_kind_of(t: FrozenTrial) -> FailKind:
    """A failed trial's kind. One with no reason at all was failed by Optuna's heartbeat
    check (its worker died); trials from before the key began their reason "interrupted"."""
    kind = t.user_attrs.get(FAIL_KIND)
    if kind is not None:
        return FailKind(kind)
    old = t.user_attrs.get(FAIL_REASON)
    if old is None or old.startswith(FailKind.INTERRUPTED):
        return FailKind.INTERRUPTED
    return FailKind.ERROR


def interrupted(t: FrozenTrial) -> bool:
    """Failed by a stop or a dead worker, not by its own run: its point runs again."""
    return t.state == TrialState.FAIL and fail_kind_of(t) == FailKind.INTERRUPTED


def point_of(t: FrozenTrial | Trial) -> str | None:
    return t.user_attrs.get(POINT)


def owner_of(t: FrozenTrial) -> dict[str, Any] | None:
    return t.user_attrs.get(WORKER)


def fail_reason(t: FrozenTrial) -> str:
    return t.user_attrs.get(FAIL_REASON) or STALE_REASON


def note_of(t: FrozenTrial) -> str:
    """Why the trial ended as it did, where it says (pruned, diverged, failed)."""
    if t.user_attrs.get(REASON):
        return t.user_attrs[REASON]
    return fail_reason(t) if t.state == TrialState.FAIL else ""


def metrics_of(t: FrozenTrial) -> dict[str, float]:
    """The final metrics the trial recorded (trials from before: none)."""
    return dict(t.user_attrs.get(METRICS) or {})


def small(t: FrozenTrial, key: str) -> Any:
    """One of the small facts of ``SMALL`` (None when the trial did not record it)."""
    if key == EPOCHS_RUN and key not in t.user_attrs and OLD_HISTORY in t.user_attrs:
        return len(t.user_attrs[OLD_HISTORY])  # a trial from before the key
    return t.user_attrs.get(key)


def study_record(study: optuna.Study, key: str, default: Any = None) -> Any:
    """One of the study's records (``SETTINGS``, ``FINAL``...), or ``default``."""
    return study.user_attrs.get(key, default)


def set_study_record(study: optuna.Study, key: str, value: Any) -> None:
    study.set_user_attr(key, value)


def old_history(t: FrozenTrial) -> list[dict[str, Any]] | None:
    """The epochs a trial from before the records table kept on itself, if it is one."""
    return t.user_attrs.get(OLD_HISTORY)
