"""Storage stage: open an Optuna database safely, and keep its studies consistent.

Checks a URL before Optuna touches it (a file that is not an Optuna database is left as it
was), turns on SQLite's write-ahead log and a busy timeout so that readers (a report, the
dashboard) never block the search, and fails trials whose process died while they ran.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import os
import socket
import sqlite3
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import optuna
import sqlalchemy
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from search.errors import StorageError

DEFAULT_STORAGE = "sqlite:///study_db/mnist.db"
SQLITE_BUSY_TIMEOUT_S = 60  # how long a writer waits for the SQLite lock before giving up
OWNERLESS_GRACE_S = 20  # a claim records its owner within milliseconds; allows for clock skew
# Every running trial records a heartbeat this often; one silent for GRACE_S belonged to a
# worker that died (on any machine) and is failed by the next worker that looks.
HEARTBEAT_S = 5
GRACE_S = 30


def _display(url: str) -> str:
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL is shown as given
        return url


def _check_sqlite_file(path: Path, shown: str) -> None:
    """Refuse a file that is not empty and not an Optuna database, without writing to it."""
    if path.is_dir():
        raise StorageError(f"--storage {shown}: {path} is a folder, expected a database file")
    if path.stat().st_size == 0:
        return
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
    except sqlite3.DatabaseError as e:
        raise StorageError(
            f"--storage {shown}: {path} is not an SQLite database ({e}); it was left untouched. "
            "Point --storage at a new file or an Optuna database"
        ) from None
    if tables and not {"studies", "trials", "version_info"} <= tables:
        raise StorageError(
            f"--storage {shown}: {path} is an SQLite database but not an Optuna one; it was "
            "left untouched. Point --storage at a new file or an Optuna database"
        )


def open_storage(url: str, must_exist: bool = False) -> RDBStorage:
    """An RDBStorage for ``url``; any problem is a one-line ``StorageError``.

    ``must_exist``: for readers (reports, ``search.best``), a missing SQLite file is an error
    rather than a new empty database.
    """
    shown = _display(url)
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except Exception:  # noqa: BLE001 - sqlalchemy raises several types for bad URLs
        raise StorageError(
            f"--storage: malformed URL {url!r}; expected for example {DEFAULT_STORAGE} "
            "or postgresql+psycopg://user@host/db"
        ) from None
    engine_kwargs: dict = {}
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if db and db != ":memory:":
            path = Path(db)
            if path.exists():
                _check_sqlite_file(path, shown)
            elif must_exist:
                raise StorageError(f"--storage {shown}: no database at {path}")
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
            with sqlite3.connect(path) as con:  # WAL is a property of the file: set it once
                con.execute("PRAGMA journal_mode=WAL")
        engine_kwargs = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
    try:
        with warnings.catch_warnings():  # heartbeats are flagged experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=HEARTBEAT_S,
                grace_period=GRACE_S,
            )
    except ImportError as e:
        raise StorageError(f"--storage {shown}: the database driver is missing ({e})") from None
    except Exception as e:  # noqa: BLE001 - sqlalchemy and Optuna raise many kinds here
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise StorageError(f"--storage {shown}: cannot open the database: {first}") from None


def worker_identity() -> dict[str, object]:
    """Who runs a trial: recorded on the trial so a dead owner can be recognised later."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child that its parent has not reaped yet is a zombie: dead all the same
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] != "Z"
    except OSError:
        return True


def fail_orphaned_trials(
    storage: RDBStorage, study: optuna.Study, now: datetime.datetime | None = None
) -> list[int]:
    """Mark FAIL the RUNNING trials whose process on this host is gone; return their numbers.

    A trial left RUNNING by a killed process would otherwise block its grid point forever. A
    claim records its owner within milliseconds, so a RUNNING trial with no owner after
    ``OWNERLESS_GRACE_S`` was claimed by a process killed in between.
    """
    failed = []
    host = socket.gethostname()
    now = now or datetime.datetime.now()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = t.user_attrs.get("worker")
        if owner is None:
            started = t.datetime_start or now
            if (now - started).total_seconds() < OWNERLESS_GRACE_S:
                continue
            reason = "interrupted: its process ended while claiming it"
        elif owner.get("host") == host and not _alive(int(owner.get("pid", -1))):
            reason = f"interrupted: process {owner.get('pid')} ended while the trial ran"
        else:
            continue
        storage.set_trial_user_attr(t._trial_id, "fail_reason", reason)
        storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        failed.append(t.number)
    return failed


def rdb(study: optuna.Study) -> RDBStorage:
    """The RDBStorage behind a study (Optuna wraps it in a cache)."""
    storage = study._storage
    return getattr(storage, "_backend", storage)


@contextlib.contextmanager
def grid_lock(storage: RDBStorage, study_name: str) -> Iterator[None]:
    """One process at a time may change a study's queue, so that no point is queued twice.

    SQLite is always on this machine: a lock file beside it. PostgreSQL and MySQL: a lock
    named after the study, held on a connection of its own, released when the block ends.
    """
    url = sqlalchemy.engine.make_url(storage.url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        if url.database in (None, "", ":memory:"):  # one process only: nothing to guard
            yield
            return
        with open(Path(url.database).with_suffix(".lock"), "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
        return
    key = int.from_bytes(hashlib.sha1(study_name.encode()).digest()[:7], "big")
    with storage.engine.connect() as con:
        if backend == "postgresql":
            con.exec_driver_sql(f"SELECT pg_advisory_lock({key})")
            unlock = f"SELECT pg_advisory_unlock({key})"
        elif backend in ("mysql", "mariadb"):
            con.exec_driver_sql(f"SELECT GET_LOCK('search-{key}', 600)")
            unlock = f"SELECT RELEASE_LOCK('search-{key}')"
        else:
            unlock = ""
        try:
            yield
        finally:
            if unlock:
                con.exec_driver_sql(unlock)


def trial_ids(
    study: optuna.Study, states: tuple[TrialState, ...], limit: int | None = None
) -> list[int]:
    """Ids of the study's trials in ``states``, oldest first, from one indexed query.

    ``study.get_trials`` would load every such trial with its attributes; on a 2,187-point grid
    that is most of a second, for each claim.
    """
    from optuna.storages._rdb.models import TrialModel  # Optuna's schema, stable since v1

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


def fail_stale_trials(study: optuna.Study) -> list[int]:
    """Fail running trials whose heartbeat stopped (their worker died, on any machine)."""
    storage = rdb(study)
    failed = []
    for trial_id in storage._get_stale_trial_ids(study._study_id):  # Optuna's own query
        try:
            storage.set_trial_user_attr(
                trial_id, "fail_reason", f"interrupted: no heartbeat for {GRACE_S} s"
            )
            if storage.set_trial_state_values(trial_id, TrialState.FAIL):
                failed.append(trial_id)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # another worker got there first
    return failed


def load_existing_study(storage_url: str, study_name: str) -> optuna.Study:
    """A study that must already exist; a wrong name lists the studies that are there."""
    storage = open_storage(storage_url, must_exist=True)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    if study_name not in names:
        there = ", ".join(names) if names else "none"
        raise StorageError(
            f"--study-name: no study {study_name!r} in {_display(storage_url)} "
            f"(studies there: {there})"
        )
    return optuna.load_study(study_name=study_name, storage=storage)
