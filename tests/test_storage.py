from __future__ import annotations

import datetime
import os
import socket
import sqlite3
import subprocess
import sys

import optuna
import pytest

from search.errors import StorageError
from search.study.recovery import OWNERLESS_GRACE_S, fail_orphaned_trials
from search.study.storage import open_storage


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
    assert fail_orphaned_trials(storage, study) == [dead.number]
    states = [t.state for t in study.get_trials()]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.RUNNING]
    assert "interrupted" in study.get_trials()[0].user_attrs["fail_reason"]


def test_a_trial_claimed_without_an_owner_is_failed_only_after_the_grace_period(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path}/s.db")
    study = optuna.create_study(storage=storage)
    study.ask()  # RUNNING, no owner recorded
    assert fail_orphaned_trials(storage, study) == []
    later = datetime.datetime.now() + datetime.timedelta(seconds=OWNERLESS_GRACE_S + 1)
    assert fail_orphaned_trials(storage, study, now=later) == [0]


def test_a_trial_whose_heartbeat_stopped_is_failed_with_the_reason(tmp_path):
    from search.study.queries import rdb
    from search.study.recovery import GRACE_S, fail_stale_trials

    storage = open_storage(f"sqlite:///{tmp_path}/s.db")
    study = optuna.create_study(storage=storage)
    silent, beating = study.ask(), study.ask()
    for t in (silent, beating):
        rdb(study).record_heartbeat(t._trial_id)
    with sqlite3.connect(tmp_path / "s.db") as con:  # the silent one last beat long ago
        con.execute(
            f"UPDATE trial_heartbeats SET heartbeat = datetime('now', '-{GRACE_S + 5} "
            f"seconds') WHERE trial_id = {silent._trial_id}"
        )
    assert fail_stale_trials(study) == [silent._trial_id]
    first, second = study.get_trials()
    assert first.state.name == "FAIL" and "no heartbeat" in first.user_attrs["fail_reason"]
    assert second.state.name == "RUNNING"


def test_a_missing_postgresql_driver_names_the_extra_that_installs_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if search[postgres] were not installed
    with pytest.raises(StorageError) as err:
        open_storage("postgresql+psycopg://u@127.0.0.1:5432/x")
    assert "driver is missing" in str(err.value) and "search[postgres]" in str(err.value)


def test_a_live_worker_stuck_on_the_storage_is_never_taken_for_dead():
    from search.study.recovery import GRACE_S, HEARTBEAT_S
    from search.study.storage import SQLITE_BUSY_TIMEOUT_S

    # A beat can wait out a whole busy timeout behind another writer, and miss one more.
    assert GRACE_S >= SQLITE_BUSY_TIMEOUT_S + 2 * HEARTBEAT_S


def test_the_pools_cleanup_after_an_interrupt_prints_no_traceback(tmp_path):
    # What SQLAlchemy logs when Ctrl-C cut a query short and the cursor cannot be closed.
    code = (
        "import logging\n"
        "from search.study.storage import open_storage\n"
        f"open_storage('sqlite:///{tmp_path}/s.db')\n"
        "try:\n"
        "    raise KeyboardInterrupt\n"
        "except KeyboardInterrupt:\n"
        "    logging.getLogger('sqlalchemy.pool.impl.QueuePool').error('Error closing cursor',"
        " exc_info=True)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == ""
