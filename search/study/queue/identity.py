"""Who runs a trial: the worker's identity, recorded on every trial it claims.

A trial left RUNNING by a process that died is recognised by its owner: on this host by the
process id, elsewhere by its heartbeat (search.study.queue.recovery). Each process also draws a
worker id, unique across machines and containers (a process id is not: the first process of
every container is 1); a worker's sampler is seeded with the study's seed plus it.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

# Drawn once per process (workers are spawned, never forked, so each draws its own); 31 bits,
# so that seed + id stays a valid NumPy seed. A constant of the process, never reassigned.
WORKER_ID = int.from_bytes(os.urandom(4), "big") >> 1


def worker_identity() -> dict[str, object]:
    """This process, as recorded on the trials it runs."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "worker_id": WORKER_ID}


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
