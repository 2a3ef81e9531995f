"""Recovery: trials whose worker died are failed, so that their grid points can run again.

Every running trial beats a heartbeat every ``HEARTBEAT_S`` seconds; one silent for ``GRACE_S``
belonged to a worker that died (on any machine) and is failed by the next worker that looks,
with Optuna's own ``fail_stale_trials``. On this host a dead owner is found at once, by its
process id: Optuna's heartbeat alone would keep its trial, and its grid point, RUNNING for
``GRACE_S`` (``tests/test_storage.py`` shows both). The heartbeat thread is ours: Optuna beats
only inside ``study.optimize``, whose waiting-trial pop races on SQLite
(search.study.queue.claims).
"""

from __future__ import annotations

import contextlib
import datetime
import threading
from collections.abc import Iterator

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from search.study.queue.identity import is_alive, is_local
from search.study.storage import records
from search.study.storage.internals import rdb, trial_id

HEARTBEAT_S = 5
# Silent this long, a trial's worker is dead. Well above the longest wait a live worker can
# have on the storage (SQLite's busy timeout, 60 s, in search.study.storage.storage) plus two
# missed beats: a beat stuck behind another writer is not death.
GRACE_S = 150
OWNERLESS_GRACE_S = 20  # a claim records its owner within milliseconds; allows for clock skew


def _fail(storage: RDBStorage, trial_id: int, reason: str) -> bool:
    """Fail a running trial with a reason; False when another worker finished it first."""
    try:
        for key, value in records.failure(records.FailKind.INTERRUPTED, reason).items():
            storage.set_trial_user_attr(trial_id, key, value)
        return storage.set_trial_state_values(trial_id, TrialState.FAIL)
    except UpdateFinishedTrialError:
        return False


def fail_orphaned_trials(
    storage: RDBStorage, study: optuna.Study, now: datetime.datetime | None = None
) -> list[int]:
    """Mark FAIL the RUNNING trials whose process on this host is gone; return their numbers.

    A trial left RUNNING by a killed process would otherwise block its grid point forever. A
    claim records its owner within milliseconds, so a RUNNING trial with no owner after
    ``OWNERLESS_GRACE_S`` was claimed by a process killed in between.
    """
    failed = []
    now = now or datetime.datetime.now()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = records.owner_of(t)
        if owner is None:
            started = t.datetime_start or now
            if (now - started).total_seconds() < OWNERLESS_GRACE_S:
                continue
            reason = "interrupted: its process ended while claiming it"
        elif is_local(owner) and not is_alive(int(owner.get("pid", -1))):
            reason = f"interrupted: process {owner.get('pid')} ended while the trial ran"
        else:
            continue
        if _fail(storage, trial_id(t), reason):
            failed.append(t.number)
    return failed


def fail_stale_trials(study: optuna.Study) -> None:
    """Fail running trials whose heartbeat stopped (their worker died, on any machine): Optuna's
    own check, which fails them without a reason of ours; ``records.fail_kind_of`` reads a
    failure without one as an interruption, whose point runs again."""
    optuna.storages.fail_stale_trials(study)


@contextlib.contextmanager
def heartbeat(study: optuna.Study, trial_id: int) -> Iterator[None]:
    """Record that this trial is alive every HEARTBEAT_S seconds while the block runs."""
    storage, stop = rdb(study), threading.Event()

    def beat() -> None:
        while not stop.is_set():
            with contextlib.suppress(Exception):  # a missed beat only delays nothing
                storage.record_heartbeat(trial_id)
            stop.wait(HEARTBEAT_S)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
