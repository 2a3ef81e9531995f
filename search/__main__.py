"""List the commands: each is ``python -m search.NAME``, with ``--help`` for its options.

    python -m search            # the list, on stdout; exit code 0
    python -m search.run --help

Each line is the first line of the command's own docstring, read from its source file, so
that listing them imports none of them (nor torch).
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

# The study's path first (search, share out, read); any other command after them, by name.
ORDER = ("run", "worker", "report", "dashboard", "best", "final", "submit")
MAIN_GUARD = 'if __name__ == "__main__":'
HERE = Path(__file__).parent


def commands() -> list[str]:
    """Every ``search.NAME`` that runs as a command: a module of this folder with a main guard,
    found rather than listed, so that a new command is never left out."""
    found = [
        path.stem
        for path in HERE.glob("*.py")
        if not path.stem.startswith("_") and MAIN_GUARD in path.read_text()
    ]
    rank = {name: place for place, name in enumerate(ORDER)}
    return sorted(found, key=lambda name: (rank.get(name, len(ORDER)), name))


def summary(command: str) -> str:
    """The first line of ``search.<command>``'s docstring, without reST's markup."""
    doc = ast.get_docstring(ast.parse((HERE / f"{command}.py").read_text())) or ""
    first = doc.strip().splitlines()[0] if doc.strip() else ""
    return re.sub(r"``([^`]*)``", r"\1", first)


def listing() -> str:
    lines = ["usage: python -m search.COMMAND [OPTIONS]  (python -m search.COMMAND --help)", ""]
    lines += [f"  {name:<10} {summary(name)}" for name in commands()]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(listing())
        return 0
    said = f"python -m search: error: unknown argument {argv[0]!r}; the commands are:"
    if argv[0] in commands():  # a space where the dot goes
        said = f"python -m search: error: {argv[0]} is python -m search.{argv[0]}; the commands:"
    sys.stderr.write(f"{said}\n{listing()}")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
