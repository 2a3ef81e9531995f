"""SQLite files: checked, created or opened read-only before Optuna touches them.

A refused open creates nothing (a new database and the folders made for it are removed); a
database a search cannot write is refused, and a reader gets a read-only connection instead.
Every check is a real, harmless system call: mode bits do not bind root, so a guess from them
would be wrong.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

import sqlalchemy

from search.errors import StorageError


def sqlite_file(url: str) -> Path | None:
    """The file an SQLite URL names; None for another database, an in-memory one or a URL
    that does not parse (open_storage reports that)."""
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except Exception:  # noqa: BLE001 - sqlalchemy raises several types for bad URLs
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _exists(path: Path) -> bool:
    """Whether ``path`` exists; any failure other than its absence (a folder on the way that
    cannot be searched) is raised, where ``Path.exists`` would raise some and hide others."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return False
    return True


def _unsearchable(path: Path) -> Path:
    """The folder on the way to ``path`` that cannot be looked into (for a message)."""
    for folder in reversed(path.absolute().parents[:-1]):  # from the top, "/" left out
        try:
            os.stat(folder)
        except PermissionError:
            return folder.parent
        except OSError:  # not there: the folders above it could be searched
            break
    return path.parent


def is_new_sqlite(url: str) -> Path | None:
    """The file an SQLite ``url`` names when it does not exist yet, so that opening it for a
    search creates a new database (worth a line to the user: a mistyped path otherwise starts a
    new, empty study without a word); None for an existing file or another kind of storage."""
    path = sqlite_file(url)
    if path is None:
        return None
    try:
        return None if _exists(path) else path
    except OSError:  # a folder that cannot be searched: open_storage says so
        return None


def _reason(e: Exception) -> str:
    """'permission denied', 'read-only file system', or SQLite's own words."""
    if isinstance(e, OSError) and e.strerror:
        return e.strerror.lower()
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _sidecars(path: Path) -> list[Path]:
    """The files SQLite keeps beside a database: the write-ahead log, its index, a journal."""
    return [Path(f"{path}{suffix}") for suffix in ("-wal", "-shm", "-journal")]


def remove_made(made: list[Path]) -> None:
    """Undo what a refused open made, newest first: a database file with SQLite's files beside
    it, then the folders made for it."""
    for path in reversed(made):
        with contextlib.suppress(OSError):
            if path.is_dir():
                path.rmdir()
            else:
                for file in (path, *_sidecars(path)):
                    file.unlink(missing_ok=True)


def _denied(path: Path, mode: int) -> str | None:
    """Why this process may not open ``path`` for ``mode`` (os.R_OK, os.W_OK), or None. The
    kernel answers for the effective ids and capabilities (mode bits do not bind root, unless it
    dropped CAP_DAC_OVERRIDE). Never found by opening the file: closing any descriptor of a
    database drops every POSIX lock SQLite holds on it in this process, and another process
    could then write at the same time and corrupt it."""
    if os.access(path, mode, effective_ids=True):
        return None
    with contextlib.suppress(OSError):
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return "read-only file system"
    return "permission denied"


def _read_only_uri(path: Path) -> str:
    """An SQLite URI that reads ``path`` without writing anything, beside it either. Where this
    process cannot write the file or its folder and there is no -wal file, every committed
    change is in the file itself, so SQLite may take it as immutable (a plain read-only open of
    a database in WAL mode creates -wal and -shm files, and fails in a folder it cannot write);
    else SQLite reads it, and its log, as usual."""
    folder = path.parent.absolute()
    stuck = not os.path.exists(f"{path}-wal") and (
        _denied(path, os.W_OK) or _denied(folder, os.W_OK)
    )
    return f"file:{quote(str(path.absolute()))}?mode=ro" + ("&immutable=1" if stuck else "")


def _check_sqlite_file(path: Path, shown: str, fix: str) -> None:
    """Refuse a file that cannot be read, or is not empty and not an Optuna database, without
    writing to it."""
    if path.is_dir():
        raise StorageError(f"{shown}: {path} is a folder, expected a database file")
    # What SQLite says of a file it cannot open ("unable to open") would not say why.
    if reason := _denied(path, os.R_OK):
        raise StorageError(f"{shown}: cannot read {path} ({reason}); {fix}")
    if path.stat().st_size == 0:
        return
    try:
        with contextlib.closing(sqlite3.connect(_read_only_uri(path), uri=True)) as con:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
    except sqlite3.DatabaseError as e:
        raise StorageError(
            f"{shown}: {path} is not an SQLite database ({e}); it was left untouched. "
            "Point --storage at a new file or an Optuna database"
        ) from None
    if tables and not {"studies", "trials", "version_info"} <= tables:
        raise StorageError(
            f"{shown}: {path} is an SQLite database but not an Optuna one; it was "
            "left untouched. Point --storage at a new file or an Optuna database"
        )


def _why_unwritable(path: Path) -> str | None:
    """Why SQLite could not write to the database ``path``, without changing anything; None if
    it can. SQLite writes the file and, beside it, its write-ahead log (-wal, -shm)."""
    if reason := _denied(path, os.W_OK):
        return f"{path} is read-only ({reason})"
    folder = path.parent.absolute()
    if reason := _denied(folder, os.W_OK | os.X_OK):
        wal, shm = _sidecars(path)[:2]
        if all(not _denied(file, os.R_OK | os.W_OK) for file in (wal, shm)):
            return None  # the log is there already and SQLite can write it
        return (
            f"{path} cannot be written: its folder {folder} is read-only ({reason}), and "
            f"SQLite keeps its write-ahead log ({wal.name}, {shm.name}) there"
        )
    return None


def _set_wal(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as con:  # WAL is a property of the file
        con.execute("PRAGMA journal_mode=WAL")


def _create_sqlite(path: Path, shown: str) -> list[Path]:
    """Create a new database file in WAL mode, with the folders it needs, and return what was
    made. A failure is one StorageError, and leaves nothing behind."""
    made: list[Path] = []
    doing = ""  # what failed, when it was not looking for the folders
    try:
        missing: list[Path] = []
        folder = path.parent
        while not _exists(folder):
            missing.insert(0, folder)
            folder = folder.parent
        for folder in missing:
            doing = f"create the folder {folder}"
            folder.mkdir()
            made.append(folder)
        doing = f"create {path}"
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666))
        made.append(path)
        _set_wal(path)
    except (OSError, sqlite3.Error) as e:
        remove_made(made)
        raise StorageError(
            f"{shown}: cannot {doing or f'look in {_unsearchable(path)}'} "
            f"({_reason(e)}); choose a folder you can write to"
        ) from None
    return made


def prepare_sqlite_file(
    path: Path, shown: str, must_exist: bool, writes: bool
) -> tuple[list[Path], str | None]:
    """Check, or create, the database file ``path`` before Optuna opens it. Returns what was
    created (for open_storage to remove if Optuna then fails), and for a reader of a file it
    cannot write, the read-only URI to open instead."""
    fix = "choose a folder you can write to" if writes else "choose a database you can read"
    try:
        exists = _exists(path)
    except OSError as e:
        raise StorageError(
            f"{shown}: cannot look in {_unsearchable(path)} ({_reason(e)}); {fix}"
        ) from None
    if not exists:
        if must_exist:
            raise StorageError(f"{shown}: no database at {path}")
        return _create_sqlite(path, shown), None
    _check_sqlite_file(path, shown, fix)
    problem = _why_unwritable(path)
    if problem is None:
        try:
            _set_wal(path)
        except sqlite3.Error as e:
            raise StorageError(
                f"{shown}: cannot switch {path} to write-ahead logging "
                f"({_reason(e)}); try again, or choose another --storage"
            ) from None
        return [], None
    if writes:
        raise StorageError(
            f"{shown}: {problem}; to add to it, copy it into a folder you can write "
            "to and point --storage at the copy"
        )
    return [], _read_only_uri(path)  # a reader can still read it, as long as nothing writes
