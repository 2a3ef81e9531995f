"""A study's lock: one process at a time may change its grid queue, on any storage.

SQLite lives on this machine, so its lock is a file beside the database (``filelock``: the same
on Linux, macOS and Windows). PostgreSQL and MySQL hold a lock named after the study on a
connection of its own, released when the block ends. ``claim_lock`` serialises claims where
the database itself does not.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy
from filelock import FileLock
from optuna.storages import RDBStorage

LOCK_WAIT_S = 600  # MySQL's GET_LOCK gives up after this many seconds


@contextlib.contextmanager
def study_lock(storage: RDBStorage, study_name: str) -> Iterator[None]:
    """Hold the study's lock while the block runs."""
    url = sqlalchemy.engine.make_url(storage.url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        if url.database in (None, "", ":memory:"):  # one process only: nothing to guard
            yield
            return
        with FileLock(Path(url.database).with_suffix(".lock")):
            yield
        return
    key = int.from_bytes(hashlib.sha1(study_name.encode()).digest()[:7], "big")
    with storage.engine.connect() as con:
        if backend == "postgresql":
            con.exec_driver_sql(f"SELECT pg_advisory_lock({key})")
            unlock = f"SELECT pg_advisory_unlock({key})"
        elif backend in ("mysql", "mariadb"):
            con.exec_driver_sql(f"SELECT GET_LOCK('search-{key}', {LOCK_WAIT_S})")
            unlock = f"SELECT RELEASE_LOCK('search-{key}')"
        else:
            unlock = ""
        try:
            yield
        finally:
            if unlock:
                con.exec_driver_sql(unlock)


def claim_lock(storage: RDBStorage, study_name: str) -> contextlib.AbstractContextManager:
    """What a claim holds while it turns a WAITING trial into its own RUNNING one.

    On SQLite the study's lock: Optuna's ``SELECT ... FOR UPDATE`` is a no-op there and
    pysqlite opens no transaction for the read, so two processes could both see a trial
    WAITING and both take it. PostgreSQL and MySQL lock the trial's row: nothing more needed.
    """
    if sqlalchemy.engine.make_url(storage.url).get_backend_name() == "sqlite":
        return study_lock(storage, study_name)
    return contextlib.nullcontext()
