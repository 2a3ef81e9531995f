"""A trial that signals from inside its epoch, so that a test can act at a known moment.

A subprocess started with ``Pause.env`` loads the ``sitecustomize`` module written here, which
wraps the engine's ``train_one_epoch``: the first process (of all that share the pause) to
start epoch ``after + 1`` of its life connects to the test, sends its pid and waits there,
inside its trial, until the test resumes it, interrupts it or kills it. The others carry on.
With ``inside="report"`` it wraps a task's ``ctx.report`` (``search.task.Context.report``)
instead: the process waits in its ``after + 1``-th report call, before that epoch is recorded
or checkpointed. The test blocks on that connection (an event), never on a sleep.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests import launch

HOOK = """
import os
import socket

_host, _port, _after, _batch, _marker, _inside = os.environ["SEARCH_TEST_PAUSE"].split("|")


def _warm_up(*args, **kwargs):  # the untimed warm-up before a trial is not one of its epochs
    _warming[0] = True
    try:
        return _warm_inner(*args, **kwargs)
    finally:
        _warming[0] = False


def _pause():
    try:
        os.close(os.open(_marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:  # another process holds the pause
        return
    from search import signals

    with socket.create_connection((_host, int(_port))) as conn:
        conn.sendall(f"{os.getpid()}\\n".encode())
        conn.settimeout(0.05)
        # Until the test resumes, closes the connection, or stops the process: a stop's
        # handler only takes note, and the run stops at its next safe point, after this.
        while not signals.stopping():
            try:
                conn.recv(1)
                return
            except TimeoutError:
                continue
            except OSError:
                return


def _train_one_epoch(model, step, *args, **kwargs):
    if _warming[0]:
        return _inner(model, step, *args, **kwargs)
    _epochs[0] += 1
    if _epochs[0] != int(_after) + 1:
        return _inner(model, step, *args, **kwargs)
    if int(_batch) == 0:  # at the epoch's start
        _pause()
        return _inner(model, step, *args, **kwargs)
    calls = [0]

    def _step(*a, **k):  # in the middle of the epoch, before batch number _batch + 1
        calls[0] += 1
        if calls[0] == int(_batch) + 1:
            _pause()
        return step(*a, **k)

    return _inner(model, _step, *args, **kwargs)


if _inside == "report":  # a task's epoch: pause in its report call, before it is recorded
    import search.task as _task

    _report_inner, _reports = _task.Context.report, [0]

    def _report(self, epoch, **metrics):
        _reports[0] += 1
        if _reports[0] == int(_after) + 1:
            _pause()
        return _report_inner(self, epoch, **metrics)

    _task.Context.report = _report
else:
    import search.engine.train as _train

    _inner, _epochs, _warming = _train.train_one_epoch, [0], [False]
    _warm_inner = _train.warm_up
    _train.train_one_epoch = _train_one_epoch
    _train.warm_up = _warm_up
    import search.tasks.mlp.task as _mlp  # which took warm_up by name, if imported first

    _mlp.warm_up = _warm_up
"""
WAIT_S = 300  # a paused process arrives within seconds; this only bounds a broken test


class Pause:
    """``env`` for the subprocesses; ``wait`` for one to pause; ``resume`` it, or ``close``."""

    def __init__(
        self, folder: Path, after_epochs: int, at_batch: int = 0, inside: str = "epoch"
    ) -> None:
        """Pause in epoch ``after_epochs + 1`` of a process's life: at its start, or before its
        batch ``at_batch + 1``; with ``inside="report"``, in that epoch's ``ctx.report`` of a
        task (``at_batch`` unused)."""
        if inside not in ("epoch", "report"):
            raise ValueError(f"inside: expected 'epoch' or 'report', got {inside!r}")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "sitecustomize.py").write_text(HOOK)
        self.server = socket.create_server(("127.0.0.1", 0))  # the system picks the port
        port = self.server.getsockname()[1]
        paths = [str(folder), *filter(None, [os.environ.get("PYTHONPATH")])]
        fields = ["127.0.0.1", port, after_epochs, at_batch, folder / "paused", inside]
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(paths),
            "SEARCH_TEST_PAUSE": "|".join(map(str, fields)),
        }
        self.conn: socket.socket | None = None

    def start(self, module: str, *args: str) -> subprocess.Popen:
        """``python -m module args...`` in a subprocess that pauses here; its output piped."""
        return launch.Popen(
            [sys.executable, "-m", module, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )

    def wait(self, proc: subprocess.Popen) -> int:
        """Block until a process pauses inside its epoch; return its pid. Fails the test if
        ``proc`` ends first."""
        self.server.settimeout(1.0)  # to notice a run that ended without pausing
        for _ in range(WAIT_S):
            try:
                self.conn, _ = self.server.accept()
                break
            except TimeoutError:
                if proc.poll() is not None:
                    out, err = proc.communicate()
                    pytest.fail(f"the run ended (code {proc.returncode}) before pausing: {err}")
        else:
            pytest.fail(f"no process paused within {WAIT_S} s")
        self.conn.settimeout(WAIT_S)
        return int(self.conn.makefile().readline())

    def resume(self) -> None:
        assert self.conn is not None
        self.conn.sendall(b"g")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.server.close()
