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
