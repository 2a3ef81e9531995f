"""What every entry point shares: one-line usage errors, number types, and ``guarded``, which
turns a ``SearchError`` into one line and its exit code (a traceback only with ``--debug``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NoReturn

from search.errors import SearchError, exit_code_of, restore_handlers, stop_on_sigterm


def positive_int(text: str) -> int:
    value = int(text) if text.strip().isdigit() else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


class Parser(argparse.ArgumentParser):
    """Usage errors as one line (exit code 2) instead of the whole usage block; every entry
    point takes ``--debug``."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_argument("--debug", action="store_true", help="show tracebacks")

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def guarded(body: Callable[[], int], debug: bool, interrupted: str = "interrupted") -> int:
    """Run an entry point's body and return its exit code: a ``SearchError`` is one line on
    stderr and its own code; Ctrl-C and SIGTERM are ``interrupted`` and 130 or 143."""
    replaced = stop_on_sigterm()
    try:
        return body()
    except SearchError as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt as stop:
        if debug:
            raise
        print(interrupted, file=sys.stderr)
        return exit_code_of(stop)
    finally:  # as before, for a caller that runs this in its own process (the tests)
        restore_handlers(replaced)


def seed_int(text: str) -> int:
    """A seed NumPy and torch both take: a whole number from 0 to 2**32 - 1."""
    value = int(text) if text.strip().isdigit() else -1
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(
            f"expected a whole number from 0 to 4294967295, got {text!r}"
        )
    return value
