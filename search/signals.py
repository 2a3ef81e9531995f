"""Stop signals: Ctrl-C and SIGTERM become a stop that the run takes at its next safe point.

``listening()`` installs handlers that only take note of a stop (``STOP``); the run raises it
where stopping is safe, with ``stop_point()``: between batches, at every report, in every wait
(``wait``), between trials. A handler that raised wherever the signal landed could land in a
destructor or a garbage-collection callback, where Python prints the exception and goes on as
if never stopped, or half way through a claim or a trial's end. A second signal while the
first waits for its safe point raises at once, for a user who insists (a task whose epoch
never reaches a safe point), except inside ``deferred()``, which holds every signal back
until a claim or a trial's end is whole. SIGTERM (``docker stop``, Kubernetes, SLURM) stops a
run as Ctrl-C does; the exit status says which: 130 or 143. Signals belong to the process, and
so does ``STOP``; handlers run in the main thread only.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

from search.errors import Terminated

SIGNALS = (signal.SIGINT, signal.SIGTERM)  # how a user, docker, Kubernetes or SLURM stop a run


class Stop:
    """The stop this process was asked for: the signal (0 for none), an event that wakes a
    wait at once, and whether a stop is being held back (``deferred``)."""

    def __init__(self) -> None:
        self.signum = 0
        self.event = threading.Event()
        self.holding = 0  # nested deferred() blocks

    def exception(self) -> KeyboardInterrupt:
        return Terminated() if self.signum == signal.SIGTERM else KeyboardInterrupt()


STOP = Stop()


def _note(signum: int, frame: object) -> None:
    insists = STOP.signum != 0 and not STOP.holding
    STOP.signum = STOP.signum or signum
    STOP.event.set()
    if insists:  # the second signal, outside a held block: stop now
        raise STOP.exception()


def listening() -> dict[int, object]:
    """From now on Ctrl-C and SIGTERM are noted for ``stop_point``; returns the handlers it
    replaced (none off the main thread, or for an ignored SIGINT: nohup), for ``restore``."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    STOP.signum, STOP.holding = 0, 0
    STOP.event.clear()
    replaced = {signal.SIGTERM: signal.signal(signal.SIGTERM, _note)}
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        replaced[signal.SIGINT] = signal.signal(signal.SIGINT, _note)
    return replaced


def restore(replaced: dict[int, object]) -> None:
    for signum, handler in replaced.items():
        signal.signal(signum, handler)
    STOP.signum = 0
    STOP.event.clear()


def stopping() -> bool:
    return STOP.signum != 0


def stop_point() -> None:
    """A safe point: raise the stop this process was asked for, if any (outside ``deferred``)."""
    if STOP.signum and not STOP.holding:
        raise STOP.exception()


def wait(seconds: float) -> None:
    """Sleep up to ``seconds``, woken at once by a stop, which is then raised."""
    STOP.event.wait(seconds)
    stop_point()


@contextlib.contextmanager
def deferred(raise_after: bool = True) -> Iterator[None]:
    """Hold every stop back while the block runs (a claim, a trial's end, a server's
    request): even a second signal waits; the stop is raised once the block is whole (unless
    ``raise_after`` is False: the caller is on its way out with it already)."""
    STOP.holding += 1
    try:
        yield
    finally:
        STOP.holding -= 1
    if raise_after:
        stop_point()
