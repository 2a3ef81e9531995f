"""Storage: open an Optuna database from a URL, safely, and find the studies in it.

Checks a URL before Optuna touches it (a file that is not an Optuna database is left as it
was; a database a search cannot write is refused, and a report reads it read-only; a refused
open creates nothing), turns on SQLite's write-ahead log and a busy timeout so that readers (a
report, the dashboard) never block the search, and turns on Optuna's heartbeats
(search.study.queue.recovery).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import tempfile
import warnings
from pathlib import Path

import optuna
import sqlalchemy
from optuna.storages import BaseStorage, RDBStorage

from search.errors import StorageError
from search.study.queue.recovery import GRACE_S, HEARTBEAT_S
from search.study.storage import records
from search.study.storage.sqlite_files import prepare_sqlite_file, remove_made, sqlite_file

DEFAULT_STORAGE = "sqlite:///study_db/mnist.db"
# The storage URL from the environment, so that a password stays off command lines (where any
# user sees it in a process listing). A PostgreSQL password can also stay out of the URL:
# libpq reads PGPASSWORD, or a ~/.pgpass file (PGPASSFILE).
STORAGE_ENV = "SEARCH_STORAGE"
SQLITE_BUSY_TIMEOUT_S = 60  # how long a writer waits for the SQLite lock before giving up


def storage_label(url: str) -> str:
    """How a user gave the URL: ``$SEARCH_STORAGE`` when it is that variable's, else the
    option."""
    return f"${STORAGE_ENV}" if url == os.environ.get(STORAGE_ENV) else "--storage"


def default_storage() -> str:
    """``--storage``'s default: ``$SEARCH_STORAGE``, else the SQLite file in study_db/."""
    return os.environ.get(STORAGE_ENV) or DEFAULT_STORAGE


def storage_help() -> str:
    return f"default: ${STORAGE_ENV}, else {DEFAULT_STORAGE}"


def _quiet_pool_cleanup() -> None:
    """SQLAlchemy's pool logs, with a traceback, a cursor it cannot close because Ctrl-C or
    SIGTERM interrupted a query; the interrupt itself is handled (the trial is failed, one line
    says so), so that log is noise for a user. A handler of the application's own still gets
    it (the record propagates)."""
    pool = logging.getLogger("sqlalchemy.pool")
    if not any(isinstance(h, logging.NullHandler) for h in pool.handlers):
        pool.addHandler(logging.NullHandler())  # instead of logging's last-resort stderr


def display_url(url: str) -> str:
    """The URL with its password hidden, for messages and for what a study records."""
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL is shown as given
        return url


def parse_url(url: str) -> sqlalchemy.engine.URL:
    """The storage URL, checked: one line naming ``--storage`` or ``$SEARCH_STORAGE`` for a
    malformed URL or an unknown kind of database (exit code 2), before anything is made."""
    label = storage_label(url)
    try:
        parsed = sqlalchemy.engine.make_url(url)
        parsed.get_dialect()  # an unknown kind of database fails here, before any file
    except sqlalchemy.exc.NoSuchModuleError:
        kind = url.partition("://")[0]
        raise StorageError(
            f"{label} {display_url(url)}: unknown kind of database {kind!r}; expected e.g. "
            f"{DEFAULT_STORAGE} or postgresql+psycopg://user@host/db",
            exit_code=2,
        ) from None
    except ImportError:  # a known kind whose driver is missing: open_storage says which extra
        return sqlalchemy.engine.make_url(url)
    except Exception:  # noqa: BLE001 - sqlalchemy raises several types for bad URLs
        raise StorageError(
            f"{label}: malformed URL {url!r}; expected for example {DEFAULT_STORAGE} "
            "or postgresql+psycopg://user@host/db",
            exit_code=2,
        ) from None
    return parsed


def open_storage(url: str, must_exist: bool = False, *, writes: bool | None = None) -> RDBStorage:
    """An RDBStorage for ``url``; any problem is a one-line ``StorageError``, and a refused
    open creates nothing.

    ``must_exist``: for readers (reports, ``search.best``), a missing SQLite file is an error
    rather than a new empty database. ``writes`` (default: not ``must_exist``): an SQLite
    database that cannot be written is refused; for a reader it is opened read-only instead.
    """
    _quiet_pool_cleanup()
    writes = not must_exist if writes is None else writes
    label = storage_label(url)
    shown = f"{label} {display_url(url)}"
    parsed = parse_url(url)
    engine_kwargs: dict = {}
    made: list[Path] = []  # a new database and its folders, removed if Optuna cannot open it
    if parsed.get_backend_name() == "sqlite":
        engine_kwargs = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
        path = sqlite_file(url)
        if path is None:
            raise StorageError(
                f"{shown}: an in-memory SQLite database keeps nothing, and no worker "
                f"or report can see it; name a file, e.g. {DEFAULT_STORAGE}"
            )
        made, read_only = prepare_sqlite_file(path, shown, must_exist, writes)
        if read_only is not None:
            # The URI goes in as a connection, not a URL: SQLAlchemy would unquote it, and a '#'
            # in the path would cut it short.
            engine_kwargs = {
                "creator": lambda: sqlite3.connect(
                    read_only, uri=True, timeout=SQLITE_BUSY_TIMEOUT_S, check_same_thread=False
                )
            }
    try:
        with warnings.catch_warnings():  # heartbeats are flagged experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=HEARTBEAT_S,
                grace_period=GRACE_S,
            )
            if writes:
                records.create_table(storage.engine)
            return storage
    except ImportError as e:
        hint = (
            " (pip install 'search[postgres]')"
            if parsed.get_backend_name() == "postgresql"
            else ""
        )
        raise StorageError(f"{shown}: the database driver is missing ({e}){hint}") from None
    except Exception as e:  # noqa: BLE001 - sqlalchemy and Optuna raise many kinds here
        remove_made(made)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise StorageError(f"{shown}: cannot open the database: {first}") from None


def missing_study(storage: BaseStorage, study_name: str) -> str | None:
    """None when the study is there; else what to tell a user, naming the studies that are."""
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    if study_name in names:
        return None
    return f"no study {study_name!r} (studies there: {', '.join(names) or 'none'})"


def load_existing_study(
    storage_url: str, study_name: str, *, writes: bool = False
) -> optuna.Study:
    """A study that must already exist; a wrong name lists the studies that are there.

    ``writes``: for a caller that adds to the study (a worker, a final run), so that a database
    it cannot write is refused now, in one line, rather than at its first write.
    """
    storage = open_storage(storage_url, must_exist=True, writes=writes)
    if missing := missing_study(storage, study_name):
        raise StorageError(f"--study-name: {missing} in {display_url(storage_url)}")
    return optuna.load_study(study_name=study_name, storage=storage)


def check_writable_folder(folder: Path, option: str) -> None:
    """Refuse a folder that cannot be made or written, found by making (and removing) a
    temporary folder in the nearest one that exists: nothing is left behind either way."""
    existing = folder.absolute()
    while not existing.exists():
        existing = existing.parent
    try:
        with tempfile.TemporaryDirectory(dir=existing):
            pass
    except OSError as e:
        reason = (e.strerror or type(e).__name__).lower()
        raise StorageError(
            f"{option} {folder}: cannot write in {existing} ({reason}); choose a folder you can "
            "write to"
        ) from None


def artifact_dir_for(storage_url: str) -> Path:
    """``artifacts/`` beside an SQLite file; ``study_db/artifacts`` for a database server."""
    url = sqlalchemy.engine.make_url(storage_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(url.database).parent / "artifacts"
    return Path("study_db") / "artifacts"
