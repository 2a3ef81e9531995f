"""``subprocess.run`` and ``Popen`` for the tests, with ``search``'s commands forked warm.

``[sys.executable, "-m", "search.NAME", ...]`` is started by the test process's zygote
(``tests/zygote.py``), which has torch and the commands imported already: the child is a real
process of its own, with the test's streams, folder, environment, session and signals, but
``search.best --help`` takes 0.4 s from start to exit instead of 2.3 s. Anything else runs as
``subprocess`` runs it, and so does a command whose environment changes how an interpreter
starts (the ``PYTHON*`` variables other than ``PYTHONPATH`` and ``PYTHONDONTWRITEBYTECODE``,
or the thread counts).
The documentation's blocks and the README's commands do not come here: they run a real
``python`` from a shell, as a reader does.
"""

from __future__ import annotations

import functools
import json
import os
import select
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.zygote import ENTRY_POINTS

ROOT = Path(__file__).resolve().parent.parent
# How an interpreter starts: a command whose environment changes these starts a fresh one.
START_VARIABLES = (
    "PYTHONHASHSEED",
    "PYTHONUNBUFFERED",
    "PYTHONWARNINGS",
    "PYTHONIOENCODING",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONSAFEPATH",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
)
PIPE = subprocess.PIPE


@functools.cache
def zygote() -> str | None:
    """The socket of this test process's zygote, started on first use; it ends with us. None
    where it will not fork (its imports started threads): commands then start fresh."""
    path = os.path.join(tempfile.mkdtemp(prefix="zygote-"), "socket")
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.zygote", path], cwd=ROOT, stdin=PIPE, stdout=PIPE
    )
    said = server.stdout.readline()  # an event: it prints once it listens, or why it will not
    if said.startswith(b"threads"):
        server.wait()
        os.rmdir(os.path.dirname(path))
        return None
    if said != b"ready\n":
        raise RuntimeError("tests/zygote.py did not start: see its error above")
    zygote.server = server  # held, so that its stdin stays open while this process lives
    return path


def command_of(args) -> str | None:
    """``search.NAME`` when ``args`` runs one of search's commands as ``python -m``."""
    if not isinstance(args, (list, tuple)) or len(args) < 3 or args[:2] != [sys.executable, "-m"]:
        return None
    name = str(args[2])
    return name if name.removeprefix("search.") in ENTRY_POINTS else None


def starts_alike(env: dict | None) -> bool:
    return env is None or all(env.get(k) == os.environ.get(k) for k in START_VARIABLES)


class Popen(subprocess.Popen):
    """``subprocess.Popen``; ``python -m search.NAME`` is forked by the zygote.

    It replaces CPython's private start and wait steps (``_execute_child``, ``_try_wait``,
    ``_internal_poll``, as Python 3.11 has them), so that ``communicate``, timeouts,
    signals and return codes stay the standard library's own code."""

    _status: socket.socket | None = None

    def _execute_child(self, *spec):
        """``subprocess``'s own start; for search's commands, a fork of the zygote."""
        args, _, preexec_fn, _, pass_fds, cwd, env, _, _, shell = spec[:10]
        p2cread, p2cwrite, c2pread, c2pwrite, errread, errwrite = spec[10:16]
        start_new_session = spec[-2]  # then process_group, the last
        module = None if shell else command_of(list(args))
        fresh = module is None or preexec_fn is not None or pass_fds or not starts_alike(env)
        if fresh or zygote() is None:
            return super()._execute_child(*spec)
        request = {
            "module": module,
            "args": [str(a) for a in args[3:]],
            "cwd": os.path.abspath(cwd or os.getcwd()),
            "env": dict(os.environ if env is None else env),
            "new_session": bool(start_new_session),
        }
        fds = [fd if fd != -1 else own for fd, own in ((p2cread, 0), (c2pwrite, 1), (errwrite, 2))]
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(zygote())
        socket.send_fds(conn, [json.dumps(request).encode()], fds)
        self._status = conn
        self._reader = conn.makefile("rb")
        self.pid = int(self._reader.readline())
        self._child_created = True
        self._close_pipe_fds(p2cread, p2cwrite, c2pread, c2pwrite, errread, errwrite)

    def _from_zygote(self, pid: int, flags: int) -> tuple[int, int]:
        """``os.waitpid`` for a child of the zygote: its status arrives on our connection."""
        if flags & os.WNOHANG and not select.select([self._status], [], [], 0)[0]:
            return 0, 0
        line = self._reader.readline()
        if not line:
            raise ChildProcessError(f"the zygote lost process {pid}")
        self._status.close()
        return pid, int(line)

    def _internal_poll(self, _deadstate=None, **kwargs):
        if self._status is None:
            return super()._internal_poll(_deadstate, **kwargs)
        return super()._internal_poll(_deadstate, _waitpid=self._from_zygote)

    def _try_wait(self, wait_flags):
        if self._status is None:
            return super()._try_wait(wait_flags)
        return self._from_zygote(self.pid, wait_flags)


def run(args, *, input=None, timeout=None, capture_output=False, **kwargs):
    """``subprocess.run``, with search's commands forked by the zygote."""
    if capture_output:
        kwargs["stdout"] = kwargs["stderr"] = PIPE
    if input is not None:
        kwargs["stdin"] = PIPE
    with Popen(args, **kwargs) as process:
        try:
            stdout, stderr = process.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
