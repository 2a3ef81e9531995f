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


def fail_dead_trials(study: optuna.Study, now: datetime.datetime | None = None) -> list[int]:
    """Fail the running trials of dead workers; return the numbers of those found by owner.

    By owner: a trial whose process on this host is gone, or one with no owner
    ``OWNERLESS_GRACE_S`` after it started (a claim records its owner within milliseconds, so
    its claimant was killed in between). By heartbeat, on any host: Optuna's own
    ``fail_stale_trials``, which records no reason; ``records.fail_kind_of`` reads that as an
    interruption.
    """
    failed, storage = [], rdb(study)
    now = now or datetime.datetime.now()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner, age = records.owner_of(t), (now - (t.datetime_start or now)).total_seconds()
        if owner is None and age >= OWNERLESS_GRACE_S:
            reason = "interrupted: its process ended while claiming it"
        elif owner is not None and is_local(owner) and not is_alive(int(owner.get("pid", -1))):
            reason = f"interrupted: process {owner.get('pid')} ended while the trial ran"
        else:
            continue
        try:  # another worker may fail it first
            for key, value in records.failure(records.FailKind.INTERRUPTED, reason).items():
                storage.set_trial_user_attr(trial_id(t), key, value)
            if storage.set_trial_state_values(trial_id(t), TrialState.FAIL):
                failed.append(t.number)
        except UpdateFinishedTrialError:
            pass
    optuna.storages.fail_stale_trials(study)
    return failed


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
