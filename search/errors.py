"""Errors the service reports to a user as one line and an exit code, never as a traceback."""

from __future__ import annotations


class SearchError(Exception):
    """A problem a user can fix: printed as one line, then the process exits with ``exit_code``
    (the class's, or the one given)."""

    exit_code = 1

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


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


# What each exit status of every command means, written once: ``--help`` shows this table
# (search.cli), and a test checks that every command's help does.
EXIT_CODES: dict[int, str] = {
    0: "done",
    SearchError.exit_code: "the work failed or there is nothing to show yet (every trial failed, "
    "repeated failures, data or storage unusable, no completed trial yet)",
    UsageError.exit_code: "usage: a bad option, space file, task or URL; nothing was created",
    EXIT_INTERRUPTED: "stopped by Ctrl-C",
    Terminated.exit_code: "stopped by SIGTERM (docker stop, Kubernetes, SLURM)",
}


def exit_code_of(stop: KeyboardInterrupt) -> int:
    """The exit status for a run stopped by Ctrl-C (130) or SIGTERM (143)."""
    return stop.exit_code if isinstance(stop, Terminated) else EXIT_INTERRUPTED


def first_line(e: BaseException) -> str:
    """The first line of an exception's message, or "" when it has none."""
    text = str(e).strip()
    return text.splitlines()[0] if text else ""


def one_line(e: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    return f"{type(e).__name__}: {first_line(e)}".rstrip(": ")
