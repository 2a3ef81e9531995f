"""Who runs a trial: the worker's identity, recorded on every trial it claims.

A trial left RUNNING by a process that died is recognised by its owner: on this host by the
process id, elsewhere by its heartbeat (search.study.queue.recovery). Each process also draws a
worker id, unique across machines and containers (a process id is not: the first process of
every container is 1); a worker started with no index seeds its sampler with the study's seed
plus it.
"""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path


def worker_id() -> int:
    """This process's worker id, drawn at random once per process: kept by process id, so a
    forked worker draws its own; 31 bits, so that seed + id stays a valid NumPy seed."""
    return _drawn(os.getpid())


@functools.cache
def _drawn(pid: int) -> int:
    return int.from_bytes(os.urandom(4), "big") >> 1


def worker_identity() -> dict[str, object]:
    """This process, as recorded on the trials it runs."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "worker_id": worker_id()}


def is_local(owner: dict[str, object]) -> bool:
    return owner.get("host") == socket.gethostname()


def is_alive(pid: int) -> bool:
    """Whether a process of this host is still running (a zombie counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child that its parent has not reaped yet is a zombie: dead all the same
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] != "Z"
    except OSError:
        return True
