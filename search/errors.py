"""Errors the service reports to a user as one line and an exit code, never as a traceback."""

from __future__ import annotations


class SearchError(Exception):
    """A problem a user can fix: printed as one line, then the process exits with ``exit_code``."""

    exit_code = 1


class UsageError(SearchError):
    """A bad argument or input file (exit code 2, like argparse's own usage errors)."""

    exit_code = 2


class DataError(SearchError):
    """The dataset is missing, cannot be downloaded, or its files are damaged."""


class StorageError(SearchError):
    """The storage URL is malformed or unreachable, or the file is not an Optuna database."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (``docker stop``, Kubernetes, SLURM): stops a run exactly as Ctrl-C does, so
    every path that cleans up after Ctrl-C cleans up after it too; the exit status is 143."""

    exit_code = 143  # 128 + SIGTERM, the shell's convention


EXIT_INTERRUPTED = 130  # 128 + SIGINT: Ctrl-C


def exit_code_of(stop: KeyboardInterrupt) -> int:
    """The exit status for a run stopped by Ctrl-C (130) or SIGTERM (143)."""
    return stop.exit_code if isinstance(stop, Terminated) else EXIT_INTERRUPTED


def stop_on_sigterm() -> object:
    """From now on SIGTERM raises ``Terminated`` in the main thread, as SIGINT raises
    KeyboardInterrupt; returns the handler it replaced (None off the main thread)."""
    import signal
    import threading

    def handler(signum: int, frame: object) -> None:
        # Once is enough: a second SIGTERM (scancel signals every process of a job, and
        # search.run passes it on too) must not cut short the cleanup the first one started.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated

    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, handler)
