"""What a user types next: the commands that go on from a study, ready to copy.

The storage is named only where it is not the default (a password never: it stays in
``$SEARCH_STORAGE``).
"""

from __future__ import annotations

import shlex

from search.study.storage.storage import STORAGE_ENV, default_storage, display_url


def worker_command(storage: str, study_name: str) -> str:
    """The command that joins a worker to the study, as a user would type it."""
    words = ["python", "-m", "search.worker"]
    if storage != default_storage():  # else the worker's default is the same storage
        words += ["--storage", display_url(storage)]
    hint = "" if display_url(storage) == storage else f" (its password: ${STORAGE_ENV})"
    return shlex.join([*words, "--study-name", study_name]) + hint


def next_steps(storage: str, study_name: str) -> str:
    """What a user does next with a study, as commands to copy."""
    where = [] if storage == default_storage() else ["--storage", display_url(storage)]
    name = ["--study-name", study_name]
    lines = ["next:"]
    for command, what in (
        ("search.report", "charts and tables as HTML"),
        ("search.best", "the best configuration as a space file"),
        ("search.final", "retrain the best on all training data, with seeds"),
    ):
        lines.append(f"  {shlex.join(['python', '-m', command, *where, *name])}  # {what}")
    dashboard = shlex.join(["python", "-m", "search.dashboard", *where])
    lines.append(f"  {dashboard}  # browse every study in optuna-dashboard")
    return "\n".join(lines)
