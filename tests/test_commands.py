"""What every command shows and says: ``--help`` (examples, defaults, the exit codes),
``python -m search`` (the list of commands), and the dashboard's refusals, each one line that
blames the option at fault, with its exit code."""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import select
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from search.__main__ import commands
from search.errors import EXIT_CODES
from search.study.storage.storage import open_storage

from . import launch
from .helpers import tree, without_root_powers

COMMANDS = commands()  # every python -m search.NAME there is
ISSUED = {"run", "worker", "report", "dashboard", "best", "final", "submit"}  # at least these
CODES = {0, 1, 2, 130, 143}  # done, failed, usage, Ctrl-C, SIGTERM
SECRET = "s3cret-in-the-url"


def help_of(command: str, capsys: pytest.CaptureFixture[str]) -> str:
    entry = importlib.import_module(f"search.{command}")
    with pytest.raises(SystemExit) as exit_:
        entry.main(["--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_commands_help_shows_examples_and_every_exit_code(command, capsys, monkeypatch):
    monkeypatch.setenv("SEARCH_STORAGE", f"postgresql+psycopg://u:{SECRET}@db.test/search")
    text = help_of(command, capsys)
    lines = [line.strip() for line in text.splitlines()]
    assert any(line.startswith(f"python -m search.{command} ") for line in lines)
    shown = {int(m.group(1)) for line in lines if (m := re.match(r"(\d+)\s", line))}
    assert CODES <= shown
    assert "(default: None)" not in text and "(default: False)" not in text
    # A default from the environment is named, never printed (lines rejoined: help wraps).
    assert SECRET not in "".join(text.split())


@pytest.mark.parametrize(
    ("command", "option", "default"),
    [("final", "--top", "3"), ("final", "--seeds", "3"), ("dashboard", "--port", "8080")],
)
def test_help_shows_an_options_default(command, option, default, capsys):
    (line,) = [s for s in help_of(command, capsys).splitlines() if s.strip().startswith(option)]
    assert line.rstrip().endswith(f"(default: {default})")


def test_the_exit_code_table_covers_the_codes_the_commands_use():
    assert set(EXIT_CODES) == CODES


def run_package(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "search", *argv], capture_output=True, text=True, timeout=60
    )


def test_python_m_search_lists_every_command_and_exits_0():
    done = run_package()
    assert done.returncode == 0 and done.stderr == "", done.stderr
    listed = {line.split()[0] for line in done.stdout.splitlines() if line.startswith("  ")}
    assert listed == set(COMMANDS) and ISSUED <= listed


@pytest.mark.parametrize("argv", [["nonsense"], ["run", "--sampler", "grid"], ["--version"]])
def test_python_m_search_with_an_argument_lists_the_commands_on_stderr_and_exits_2(argv):
    done = run_package(*argv)
    assert done.returncode == 2 and done.stdout == ""
    assert all(f"  {command} " in done.stderr for command in COMMANDS)


def test_python_m_search_imports_no_torch():
    probe = (
        "import runpy, sys\n"
        "sys.argv = ['search']\n"
        "try:\n"
        "    runpy.run_module('search', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('heavy:', sorted(m for m in ('torch', 'numba') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.splitlines()[-1] == "heavy: []", done.stderr


@pytest.fixture
def study_db(tmp_path: Path) -> Path:
    """An Optuna database holding study 'x' with one finished trial, in a folder of its own."""
    path = tmp_path / "db" / "x.db"
    storage = open_storage(f"sqlite:///{path}")  # in write-ahead-log mode, as a search leaves it
    study = optuna.create_study(storage=storage, study_name="x")
    study.add_trial(optuna.trial.create_trial(params={}, distributions={}, value=0.5))
    storage.engine.dispose()  # its log folded into x.db: the folder holds x.db alone
    return path


def dashboard(db: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return launch.run(
        [sys.executable, "-m", "search.dashboard", "--storage", f"sqlite:///{db}", *argv],
        capture_output=True,
        text=True,
        timeout=60,  # a refusal takes a second or two; a dashboard that serves never ends
    )


def one_line_refusal(done: subprocess.CompletedProcess[str], code: int) -> str:
    assert done.returncode == code and done.stdout == "", done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1, done.stderr
    return done.stderr


@contextlib.contextmanager
def port_in_use() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def test_a_port_in_use_blames_port_and_leaves_no_folder(study_db):
    before = tree(study_db.parent)
    with port_in_use() as port:
        line = one_line_refusal(dashboard(study_db, "--port", str(port)), 1)
    assert line.startswith("error: --port ")
    assert tree(study_db.parent) == before  # no artifact folder made for a server that failed


def test_an_unknown_host_blames_host_with_a_usage_error(study_db):
    before = tree(study_db.parent)
    line = one_line_refusal(dashboard(study_db, "--host", "no-such-host.invalid"), 2)
    assert line.startswith("error: --host no-such-host.invalid")
    assert tree(study_db.parent) == before


def test_an_artifact_dir_that_cannot_be_made_blames_artifact_dir(study_db, tmp_path):
    (tmp_path / "a-file").write_text("")
    folder = tmp_path / "a-file" / "artifacts"
    line = one_line_refusal(dashboard(study_db, "--port", "0", "--artifact-dir", str(folder)), 1)
    assert line.startswith(f"error: --artifact-dir {folder}")


def get_status(url: str) -> int:
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.status


def test_a_read_only_database_is_served_without_making_anything(study_db, modes):
    modes(study_db, 0o444)
    modes(study_db.parent, 0o555)  # its default artifact folder cannot be made either
    before = tree(study_db.parent)
    cmd = [sys.executable, "-m", "search.dashboard", "--storage", f"sqlite:///{study_db}"]
    proc = launch.Popen(
        [*cmd, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=without_root_powers if os.geteuid() == 0 else None,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 120)  # the line, once it is bound
        first = proc.stdout.readline() if ready else ""
        found = re.search(r"http://127\.0\.0\.1:\d+/", first)
        assert found, first + proc.stderr.read() if proc.poll() is not None else first
        assert get_status(f"{found.group(0)}api/studies") == 200
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert tree(study_db.parent) == before
