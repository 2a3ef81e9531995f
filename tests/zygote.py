"""The tests' warm interpreter: it imports torch, Optuna and every ``search`` command once, then
forks one child per command a test starts (``tests/launch.py`` is the test's side).

A fresh ``python -m search.run`` spends seconds importing torch before it does anything, and
the suite starts over a hundred of them. A child forked from here starts in milliseconds and
then does what the fresh interpreter would: it takes the test's standard streams, folder,
environment and session, puts the folder first on ``sys.path`` (as ``-m`` does), loads a
``sitecustomize`` from a folder that ``PYTHONPATH`` adds (as the interpreter's start does),
and calls the command's ``main()``, exiting with its code through the interpreter's own exit.
The server's objects are frozen out of the garbage collector (``gc.freeze``), so that a child's
exit does not walk them all: 0.3 s instead of 1.3 s with torch loaded. The server reports each
child's wait status to the test that started it. It exits when its standard input closes, that
is when the test process that started it ends. It serves only while it is the one thread of
its process (with ``OMP_NUM_THREADS=1``, as the tests set it, torch starts none at import).

Run by ``tests/launch.py`` only: ``python -m tests.zygote SOCKET_PATH``.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import json
import os
import random
import selectors
import signal
import socket
import sys

import numpy as np

from search.__main__ import commands

ENTRY_POINTS = commands()  # every python -m search.NAME, found as `python -m search` lists them
STREAMS = 3  # stdin, stdout and stderr, passed as file descriptors with each request


# Besides the commands: the built-in task, and the bundled examples' scikit-learn. (A study's
# lazy imports, such as the kernels and the dashboard notes' figures, made no measurable
# difference here: most runs train in their own workers.)
EXTRAS = ("search.tasks.mlp.task", "sklearn.model_selection", "sklearn.datasets")


def preload() -> None:
    """Import every command and ``EXTRAS``, once for all the children."""
    for name in [*(f"search.{e}" for e in ENTRY_POINTS), *EXTRAS]:
        importlib.import_module(name)


def serve(path: str) -> dict | None:
    """Fork a child per request until standard input closes; in a child, return its request
    (the server never returns one)."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the selector through wake_w
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    selector.register(sys.stdin, selectors.EVENT_READ)
    waiting: dict[int, socket.socket] = {}  # child pid -> the connection its test waits on
    print("ready", flush=True)
    while True:
        for key, _ in selector.select():
            if key.fileobj is sys.stdin:  # the test process is gone
                os.unlink(path)
                os.rmdir(os.path.dirname(path))
                return None
            if key.fileobj is wake_r:
                os.read(wake_r, 4096)
                reap(waiting)
                continue
            conn, _ = listener.accept()
            message, fds, _, _ = socket.recv_fds(conn, 1 << 20, STREAMS)
            pid = os.fork()
            if pid == 0:
                for other in (listener, *waiting.values()):
                    other.close()
                selector.close()
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                os.close(wake_r)
                os.close(wake_w)
                conn.close()
                return {**json.loads(message), "fds": fds}
            for fd in fds:
                os.close(fd)
            conn.sendall(f"{pid}\n".encode())
            waiting[pid] = conn


def reap(waiting: dict[int, socket.socket]) -> None:
    """Send each ended child's wait status to its test."""
    while waiting:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            return
        conn = waiting.pop(pid, None)
        if conn is not None:
            try:
                conn.sendall(f"{status}\n".encode())
            except OSError:  # the test stopped waiting
                pass
            conn.close()


def become(request: dict) -> None:
    """Take the test's streams, session, folder, environment and arguments, as a fresh
    interpreter started by the test would have them."""
    if request["new_session"]:
        os.setsid()
    for target, fd in enumerate(request["fds"]):
        os.dup2(fd, target)
    for fd in set(request["fds"]) - {0, 1, 2}:
        os.close(fd)
    os.chdir(request["cwd"])
    added = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
    added = [p for p in added if p not in os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    os.environ.clear()
    os.environ.update(request["env"])
    sys.path[:1] = [os.getcwd(), *added]  # -m puts the current folder first
    sys.dont_write_bytecode = bool(os.environ.get("PYTHONDONTWRITEBYTECODE"))
    random.seed()  # a fresh interpreter's generators are seeded afresh
    np.random.seed()
    for folder in added:
        site = os.path.join(folder, "sitecustomize.py")
        if os.path.isfile(site):
            spec = importlib.util.spec_from_file_location("sitecustomize", site)
            module = importlib.util.module_from_spec(spec)
            sys.modules["sitecustomize"] = module
            spec.loader.exec_module(module)
            break


def run_command(request: dict) -> int:
    module = importlib.import_module(request["module"])
    sys.argv = [module.__file__, *request["args"]]
    sys.modules["__main__"] = module
    become(request)
    return module.main()


def native_threads() -> int:
    """The threads of this process, Python's or a library's (Linux; 1 where it cannot tell)."""
    return len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else 1


if __name__ == "__main__":
    preload()
    if native_threads() > 1:  # a fork copies no thread but may copy a lock one holds
        print(f"threads {native_threads()}", flush=True)  # the tests start fresh ones instead
        sys.exit(0)
    gc.freeze()  # the children share these pages: collections there leave them alone
    child = serve(sys.argv[1])
    if child is None:
        sys.exit(0)
    sys.exit(run_command(child))  # the interpreter's own exit, as a fresh one's
