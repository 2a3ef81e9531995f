from __future__ import annotations

import contextlib
import datetime
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from search.errors import StorageError
from search.study.queue.recovery import OWNERLESS_GRACE_S, fail_dead_trials
from search.study.storage import records
from search.study.storage.sqlite_files import is_new_sqlite
from search.study.storage.storage import open_storage

from .helpers import tree, without_root_powers

REPO = Path(__file__).resolve().parent.parent


def test_a_new_sqlite_file_is_created_with_its_folder_and_write_ahead_log(tmp_path):
    open_storage(f"sqlite:///{tmp_path}/deep/er/s.db")
    with sqlite3.connect(tmp_path / "deep" / "er" / "s.db") as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_file_that_is_not_a_database_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("my thesis, do not lose\n")
    with pytest.raises(StorageError, match="not an SQLite database"):
        open_storage(f"sqlite:///{path}")
    assert path.read_text() == "my thesis, do not lose\n"


def test_another_applications_sqlite_database_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE customers (name TEXT)")
        con.execute("INSERT INTO customers VALUES ('ada')")
    before = path.read_bytes()
    with pytest.raises(StorageError, match="not an Optuna one"):
        open_storage(f"sqlite:///{path}")
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    "url", ["nonsense", "sqlite//x.db", "postgresql+psycopg://u@127.0.0.1:1/x"]
)
def test_malformed_or_unreachable_urls_are_one_line_errors(url):
    with pytest.raises(StorageError) as err:
        open_storage(url)
    assert "\n" not in str(err.value)


def test_trials_of_a_dead_process_on_this_host_are_failed(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path}/s.db")
    study = optuna.create_study(storage=storage)
    dead, alive = study.ask(), study.ask()
    dead.set_user_attr("worker", {"host": socket.gethostname(), "pid": 2**22 + 1})
    alive.set_user_attr("worker", {"host": socket.gethostname(), "pid": os.getpid()})
    assert fail_dead_trials(study) == [dead.number]
    states = [t.state for t in study.get_trials()]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.RUNNING]
    assert "interrupted" in study.get_trials()[0].user_attrs["fail_reason"]


def test_optunas_heartbeat_alone_keeps_a_dead_local_workers_trial_running(tmp_path):
    """Why search.study.queue.recovery looks for dead owners itself: Optuna's own check waits for
    the heartbeat's grace period, and its grid point waits with it."""
    from search.study.storage.internals import rdb, trial_id

    storage = open_storage(f"sqlite:///{tmp_path}/s.db")
    study = optuna.create_study(storage=storage)
    dead = study.ask()
    dead.set_user_attr("worker", {"host": socket.gethostname(), "pid": 2**22 + 1})
    rdb(study).record_heartbeat(trial_id(dead))  # it beat a moment ago, then its process died
    optuna.storages.fail_stale_trials(study)
    assert study.get_trials()[0].state == optuna.trial.TrialState.RUNNING  # Optuna: still on
    assert fail_dead_trials(study) == [dead.number]  # ours: failed at once


def test_a_trial_claimed_without_an_owner_is_failed_only_after_the_grace_period(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path}/s.db")
    study = optuna.create_study(storage=storage)
    study.ask()  # RUNNING, no owner recorded
    assert fail_dead_trials(study) == []
    later = datetime.datetime.now() + datetime.timedelta(seconds=OWNERLESS_GRACE_S + 1)
    assert fail_dead_trials(study, now=later) == [0]


def test_a_trial_whose_heartbeat_stopped_is_failed_as_interrupted(tmp_path):
    from search.study.queue.recovery import GRACE_S
    from search.study.storage.internals import rdb, trial_id

    storage = open_storage(f"sqlite:///{tmp_path}/s.db")
    study = optuna.create_study(storage=storage)
    silent, beating = study.ask(), study.ask()
    for t in (silent, beating):
        rdb(study).record_heartbeat(trial_id(t))
    with sqlite3.connect(tmp_path / "s.db") as con:  # the silent one last beat long ago
        con.execute(
            f"UPDATE trial_heartbeats SET heartbeat = datetime('now', '-{GRACE_S + 5} "
            f"seconds') WHERE trial_id = {trial_id(silent)}"
        )
    fail_dead_trials(study)
    first, second = study.get_trials()
    assert first.state.name == "FAIL" and records.interrupted(first)  # its point runs again
    assert second.state.name == "RUNNING"


def test_a_missing_postgresql_driver_names_the_extra_that_installs_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if search[postgres] were not installed
    with pytest.raises(StorageError) as err:
        open_storage("postgresql+psycopg://u@127.0.0.1:5432/x")
    assert "driver is missing" in str(err.value) and "search[postgres]" in str(err.value)


def test_a_live_worker_stuck_on_the_storage_is_never_taken_for_dead():
    from search.study.queue.recovery import GRACE_S, HEARTBEAT_S
    from search.study.storage.storage import SQLITE_BUSY_TIMEOUT_S

    # A beat can wait out a whole busy timeout behind another writer, and miss one more.
    assert GRACE_S >= SQLITE_BUSY_TIMEOUT_S + 2 * HEARTBEAT_S


def test_the_pools_cleanup_after_an_interrupt_prints_no_traceback(tmp_path):
    # What SQLAlchemy logs when Ctrl-C cut a query short and the cursor cannot be closed.
    code = (
        "import logging\n"
        "from search.study.storage.storage import open_storage\n"
        f"open_storage('sqlite:///{tmp_path}/s.db')\n"
        "try:\n"
        "    raise KeyboardInterrupt\n"
        "except KeyboardInterrupt:\n"
        "    logging.getLogger('sqlalchemy.pool.impl.QueuePool').error('Error closing cursor',"
        " exc_info=True)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == ""


def run_as_a_user(*args: str) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` in the repository, bound by file modes as any user is (root too)."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=without_root_powers if os.geteuid() == 0 else None,
    )


def open_as_a_user(url: str) -> subprocess.CompletedProcess[str]:
    """What a command that writes (search.run) does first: open the storage, in a process of
    its own, printing a refusal as every command does."""
    code = (
        "import sys\n"
        "from search.cli import guarded\n"
        "from search.study.storage.storage import open_storage\n"
        f"sys.exit(guarded(lambda: open_storage({url!r}) and 0, debug=False))\n"
    )
    return run_as_a_user("-c", code)


def one_line_refusal(done: subprocess.CompletedProcess[str]) -> str:
    """The one line a refused command printed, after checking that it printed only that."""
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("error: --storage sqlite:///")
    return done.stderr.strip()


@pytest.fixture
def study_file(tmp_path: Path) -> Path:
    """An Optuna database holding study 'x' with one finished trial, in a folder of its own."""
    path = tmp_path / "shared" / "x.db"
    storage = open_storage(f"sqlite:///{path}")
    study = optuna.create_study(storage=storage, study_name="x")
    study.add_trial(optuna.trial.create_trial(params={}, distributions={}, value=0.5))
    storage.engine.dispose()  # the last connection closed: SQLite folds its log into x.db
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.db"]
    return path


def test_permission_tests_run_bound_by_file_modes(tmp_path, modes):
    locked = tmp_path / "locked"
    locked.write_text("")
    modes(locked, 0o444)
    done = run_as_a_user("-c", f"open({str(locked)!r}, 'w')")
    assert "PermissionError" in done.stderr


@pytest.mark.parametrize(
    ("folder_mode", "below", "refusal"),
    [
        (0o555, "x.db", "cannot create {folder}/x.db (permission denied)"),
        (0o555, "sub/deeper/x.db", "cannot create the folder {folder}/sub (permission denied)"),
        (0o000, "x.db", "cannot look in {folder} (permission denied)"),
        (0o000, "sub/x.db", "cannot look in {folder} (permission denied)"),
    ],
    ids=["read-only folder", "read-only folder, new folders", "closed folder", "closed, new"],
)
def test_a_new_database_in_a_folder_that_cannot_be_written_is_refused_in_one_line(
    tmp_path, modes, folder_mode, below, refusal
):
    folder = tmp_path / "theirs"
    folder.mkdir()
    modes(folder, folder_mode)
    url = f"sqlite:///{folder}/{below}"
    line = one_line_refusal(open_as_a_user(url))
    expected = refusal.format(folder=folder)
    assert line == f"error: --storage {url}: {expected}; choose a folder you can write to"
    assert tree(tmp_path) == {"theirs": None}


@pytest.mark.parametrize(
    ("file_mode", "folder_mode", "problem"),
    [
        (0o444, 0o755, "{path} is read-only (permission denied)"),
        (0o444, 0o555, "{path} is read-only (permission denied)"),
        (
            0o644,
            0o555,
            "{path} cannot be written: its folder {path.parent} is read-only (permission "
            "denied), and SQLite keeps its write-ahead log (x.db-wal, x.db-shm) there",
        ),
    ],
    ids=["read-only file", "read-only file and folder", "read-only folder"],
)
def test_a_search_into_a_database_it_cannot_write_is_refused_in_one_line(
    study_file, tiny_root, modes, file_mode, folder_mode, problem
):
    before = tree(study_file.parent)
    modes(study_file, file_mode)
    modes(study_file.parent, folder_mode)
    url = f"sqlite:///{study_file}"
    done = run_as_a_user(
        "-m", "search.run", "--study-name", "x", "--sampler", "grid", "--max-epochs", "1",
        "--train-limit", "300", "--val-size", "200", "--data-dir", str(tiny_root),
        "--storage", url, "--create-only",
    )  # fmt: skip
    assert one_line_refusal(done) == (
        f"error: --storage {url}: {problem.format(path=study_file)}; to add to it, copy it into "
        "a folder you can write to and point --storage at the copy"
    )
    assert tree(study_file.parent) == before


@pytest.mark.parametrize(
    ("file_mode", "folder_mode"),
    [(0o444, 0o755), (0o444, 0o555), (0o644, 0o555)],
    ids=["read-only file", "read-only file and folder", "read-only folder"],
)
def test_a_database_it_cannot_write_can_still_be_read(study_file, modes, file_mode, folder_mode):
    before = tree(study_file.parent)
    modes(study_file, file_mode)
    modes(study_file.parent, folder_mode)
    done = run_as_a_user(
        "-m", "search.best", "--study-name", "x", "--storage", f"sqlite:///{study_file}"
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "# Best trial 0 of study 'x'" in done.stdout
    assert tree(study_file.parent) == before


def test_a_reader_sees_what_a_running_search_has_not_yet_written_into_the_file(study_file, modes):
    # The search's log (x.db-wal) holds a change that is not in x.db yet.
    with contextlib.closing(sqlite3.connect(study_file)) as writer:
        writer.execute("UPDATE studies SET study_name = 'renamed'")
        writer.commit()
        assert (study_file.parent / "x.db-wal").stat().st_size > 0
        for path in study_file.parent.iterdir():
            modes(path, 0o444)
        modes(study_file.parent, 0o555)
        before = tree(study_file.parent)
        done = run_as_a_user(
            "-m", "search.best", "--study-name", "renamed", "--storage", f"sqlite:///{study_file}"
        )
        assert done.returncode == 0, done.stderr
        assert tree(study_file.parent) == before


@pytest.mark.parametrize(
    ("file_mode", "folder_mode", "refusal"),
    [
        (0o000, 0o755, "cannot read {path} (permission denied)"),
        (0o644, 0o000, "cannot look in {path.parent} (permission denied)"),
    ],
    ids=["unreadable file", "closed folder"],
)
def test_a_database_it_cannot_read_is_refused_in_one_line(
    study_file, modes, file_mode, folder_mode, refusal
):
    modes(study_file, file_mode)
    modes(study_file.parent, folder_mode)
    url = f"sqlite:///{study_file}"
    done = run_as_a_user("-m", "search.best", "--study-name", "x", "--storage", url)
    assert one_line_refusal(done) == (
        f"error: --storage {url}: {refusal.format(path=study_file)}; choose a database you can "
        "read"
    )


def test_a_new_database_sqlite_cannot_set_up_is_removed_with_its_folders(tmp_path, monkeypatch):
    def broken(*args, **kwargs):  # SQLite fails as it sets up the new file (WAL mode)
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(sqlite3, "connect", broken)
    url = f"sqlite:///{tmp_path}/new/er/x.db"
    with pytest.raises(StorageError) as err:
        open_storage(url)
    assert str(err.value) == (
        f"--storage {url}: cannot create {tmp_path}/new/er/x.db (disk I/O error); choose a "
        "folder you can write to"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_new_database_optuna_cannot_set_up_is_removed_with_its_folders(tmp_path, monkeypatch):
    import search.study.storage.storage as storage

    def broken(*args, **kwargs):
        raise RuntimeError("no tables for you")

    monkeypatch.setattr(storage, "RDBStorage", broken)
    with pytest.raises(StorageError, match="cannot open the database: no tables for you"):
        open_storage(f"sqlite:///{tmp_path}/new/x.db")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("url", "new"),
    [
        ("sqlite:///{tmp}/new/x.db", "{tmp}/new/x.db"),
        ("sqlite:///relative/x.db", "relative/x.db"),
        ("sqlite:///{tmp}/old.db", None),
        ("sqlite:///:memory:", None),
        ("sqlite://", None),
        ("postgresql+psycopg://u@127.0.0.1:1/x", None),
        ("nonsense", None),
    ],
)
def test_is_new_sqlite_names_the_file_a_search_would_create(tmp_path, url, new):
    (tmp_path / "old.db").touch()
    expected = None if new is None else Path(new.format(tmp=tmp_path))
    assert is_new_sqlite(url.format(tmp=tmp_path)) == expected
    assert list(tmp_path.iterdir()) == [tmp_path / "old.db"]


def test_opening_a_database_never_opens_its_files_outside_sqlite(tmp_path, monkeypatch):
    # Closing any descriptor of a database drops every POSIX lock SQLite holds on it in this
    # process: another process could then write at the same time and corrupt the file.
    url = f"sqlite:///{tmp_path}/s.db"
    held = open_storage(url)  # a connection of this process, as a worker holds one
    optuna.create_study(storage=held, study_name="s")
    opened = []
    real_open = os.open

    def spy(path, *args, **kwargs):
        opened.append(os.fspath(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    for must_exist in (False, True):
        open_storage(url, must_exist=must_exist)
    assert not [p for p in opened if Path(p).name.startswith("s.db")]
