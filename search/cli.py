"""What every entry point shares: one-line usage errors, ``--help`` with examples, defaults and
the exit codes, number types, and ``guarded``, which turns a ``SearchError`` into one line and
its exit code (a traceback only with ``--debug``).
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import NoReturn

from search import signals
from search.errors import EXIT_CODES, SearchError, UsageError, exit_code_of

HELP_WIDTH = 79  # the epilog is laid out by hand (argparse would join its lines)


def positive_int(text: str) -> int:
    value = int(text) if text.strip().isdigit() else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number from 0, got {text!r}")
    return int(text)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the epilog's lines (examples, the exit codes) as written, and adds an option's
    default to its help, unless there is none to show (None, a flag's False) or the help
    already says it (a default from the environment is explained, never printed: it may hold
    a password)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if default in (None, argparse.SUPPRESS) or isinstance(default, bool):
            return action.help
        if "default" in text.lower() or not action.option_strings:
            return action.help
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"


def epilog(examples: Sequence[str]) -> str:
    """The examples, one command a line, then what each exit code means."""
    lines = ["examples:", *(f"  {example}" for example in examples), ""] if examples else []
    lines.append("exit codes:")
    for code, meaning in EXIT_CODES.items():
        lines += textwrap.wrap(
            meaning, HELP_WIDTH, initial_indent=f"  {code:<5}", subsequent_indent=" " * 7
        )
    return "\n".join(lines)


class Parser(argparse.ArgumentParser):
    """Usage errors as one line (exit code 2) instead of the whole usage block; ``--help`` ends
    with ``examples`` (command lines) and the exit codes; every entry point takes ``--debug``."""

    def __init__(self, examples: Sequence[str] = (), **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        kwargs.setdefault("epilog", epilog(examples))
        super().__init__(**kwargs)
        self.add_argument("--debug", action="store_true", help="show tracebacks")

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


# The engine names what is wrong by its configuration's field; a user typed an option.
FLAGS = {
    "dataset": "--dataset",
    "data_dir": "--data-dir",
    "device": "--device",
    "train_limit": "--train-limit",
    "val_size": "--val-size",
}


def as_option(message: str) -> str | None:
    """``message`` with its leading field named as the option a user gives, or None when it
    names no field of ``FLAGS``."""
    field, sep, rest = message.partition(":")
    name, space, value = field.partition(" ")
    if sep and name in FLAGS:
        return f"{FLAGS[name]}{space}{value}:{rest}"
    return None


def guarded(body: Callable[[], int], debug: bool, interrupted: str = "interrupted") -> int:
    """Run an entry point's body and return its exit code: a ``SearchError`` is one line on
    stderr and its own code, and so is a ``ValueError`` of the engine that names one of its
    fields (``FLAGS``: exit code 2); Ctrl-C and SIGTERM are ``interrupted`` and 130 or 143."""
    replaced = signals.listening()
    try:
        return body()
    except SearchError as e:
        if debug:
            raise
        print(f"error: {as_option(str(e)) or e}", file=sys.stderr)
        return e.exit_code
    except ValueError as e:
        if debug or as_option(str(e)) is None:  # not an option's: a bug, with its traceback
            raise
        print(f"error: {as_option(str(e))}", file=sys.stderr)
        return UsageError.exit_code
    except KeyboardInterrupt as stop:
        if debug:
            raise
        print(interrupted, file=sys.stderr)
        return exit_code_of(stop)
    finally:  # as before, for a caller that runs this in its own process (the tests)
        signals.restore(replaced)


def seed_int(text: str) -> int:
    """A seed NumPy and torch both take: a whole number from 0 to 2**32 - 1."""
    value = int(text) if text.strip().isdigit() else -1
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(
            f"expected a whole number from 0 to 4294967295, got {text!r}"
        )
    return value
