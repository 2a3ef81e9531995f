"""The tests' warm launcher (tests/launch.py): a command forked from the zygote answers as the
same command in a fresh interpreter does, and takes the test's folder, environment, streams,
session and signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests import launch


def both(argv: list[str], **kwargs) -> tuple[subprocess.CompletedProcess, ...]:
    """The command run warm (forked by the zygote), then fresh (``subprocess``)."""
    command = [sys.executable, "-m", *argv]
    options = {"capture_output": True, "text": True, "timeout": 120, **kwargs}
    return launch.run(command, **options), subprocess.run(command, **options)


def answer(done: subprocess.CompletedProcess) -> tuple:
    return done.returncode, done.stdout, done.stderr


def test_a_refusal_forked_warm_is_the_fresh_interpreters_line_and_code():
    warm, fresh = both(["search.run", "--epochs", "x"])
    assert answer(warm) == answer(fresh)
    assert warm.returncode == 2 and "--epochs" in warm.stderr


def test_a_command_forked_warm_reads_the_tests_folder_and_environment(ofat_db: Path):
    env = {**os.environ, "SEARCH_STORAGE": f"sqlite:///{ofat_db.name}"}  # relative: the folder
    warm, fresh = both(
        ["search.best", "--study-name", "mnist-ofat-e2-v200"], cwd=ofat_db.parent, env=env
    )
    assert answer(warm) == answer(fresh)
    assert warm.returncode == 0 and "[params]" in warm.stdout


def test_only_searchs_commands_are_forked_warm():
    probe = [sys.executable, "-c", "import sys; print('torch' in sys.modules)"]
    assert launch.command_of(probe) is None
    assert launch.run(probe, capture_output=True, text=True).stdout == "False\n"
    assert launch.command_of([sys.executable, "-m", "search.run", "--help"]) == "search.run"


@pytest.mark.parametrize("way", ["warm", "fresh"])
def test_a_command_in_a_session_of_its_own_ends_on_its_groups_sigterm(way, ofat_db: Path):
    if way == "warm" and launch.zygote() is None:
        pytest.skip("no zygote: torch's import started threads here (OMP_NUM_THREADS)")
    start = launch.Popen if way == "warm" else subprocess.Popen
    command = [sys.executable, "-m", "search.dashboard", "--storage", f"sqlite:///{ofat_db}"]
    proc = start(
        [*command, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert "http://127.0.0.1:" in proc.stdout.readline()  # an event: printed once it listens
    assert os.getpgid(proc.pid) == proc.pid != os.getpgid(0)
    parent = int(Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    assert (parent == launch.zygote.server.pid) == (way == "warm")
    os.killpg(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "Traceback" not in err, err
