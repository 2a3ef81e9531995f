"""The command-line reference, rendered from each command's own argparse parser.

Every ``python -m search.NAME`` that ``python -m search`` lists (``search.__main__.commands``)
must have a ``build_parser()``; each option is rendered with its names, its value (metavar or
choices), its default and its help. A default that the help already explains (one read from
the environment, which may hold a password) is never printed, as ``search.cli.HelpFormatter``
does for ``--help``. Nothing here imports torch until a page is built.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

EXAMPLES_HEADER = "examples:"
EXIT_CODES_HEADER = "exit codes:"


def parsers() -> dict[str, argparse.ArgumentParser]:
    """Each command's parser, in ``python -m search``'s order."""
    from search.__main__ import commands

    found = {}
    for name in commands():
        module = importlib.import_module(f"search.{name}")
        build = getattr(module, "build_parser", None)
        if build is None:
            raise RuntimeError(f"search.{name} has no build_parser(): its options cannot be shown")
        found[name] = build()
    return found


def escape(text: str) -> str:
    """Text for a Markdown table cell, shown as written."""
    for char in "\\`*_[]|<>":
        text = text.replace(char, f"\\{char}" if char not in "<>" else f"&#{ord(char)};")
    return " ".join(text.split())


def value_of(action: argparse.Action) -> str:
    """What an option takes: its choices, its metavar, or nothing for a flag."""
    if action.nargs == 0:
        return ""
    if action.choices is not None:
        choices = list(action.choices)
        if len(choices) > 8:
            return f"{choices[0]} to {choices[-1]}"
        return " \\| ".join(f"`{c}`" for c in choices)
    return f"`{action.metavar or action.dest.upper()}`"


def default_of(action: argparse.Action) -> str:
    """The default as ``--help`` shows it: none for a flag, None, or a help that says it."""
    default: Any = action.default
    if default in (None, argparse.SUPPRESS) or isinstance(default, bool):
        return ""
    if "default" in (action.help or "").lower():
        return ""
    return f"`{default}`"


def option_rows(parser: argparse.ArgumentParser) -> list[str]:
    rows = ["| option | value | default | what it does |", "|---|---|---|---|"]
    for action in parser._actions:  # argparse keeps no public list of its actions
        if isinstance(action, argparse._HelpAction):
            continue
        names = ", ".join(f"`{s}`" for s in action.option_strings) or f"`{action.dest}`"
        said = escape(action.help or "")
        if action.required and action.option_strings:
            said = f"required. {said}".strip()
        rows.append(f"| {names} | {value_of(action)} | {default_of(action)} | {said} |")
    return rows


def examples_of(parser: argparse.ArgumentParser) -> list[str]:
    """The examples ``--help`` ends with (``search.cli.epilog``), one command a line."""
    text = (parser.epilog or "").split(EXIT_CODES_HEADER)[0]
    if EXAMPLES_HEADER not in text:
        return []
    lines = text.split(EXAMPLES_HEADER, 1)[1].splitlines()
    return [line[2:] if line.startswith("  ") else line for line in lines if line.strip()]


def command_section(name: str, parser: argparse.ArgumentParser) -> list[str]:
    out = [f"## search.{name}", "", escape(parser.description or ""), ""]
    out += ["```text", parser.format_usage().strip(), "```", ""]
    out += [*option_rows(parser), ""]
    examples = examples_of(parser)
    if examples:
        out += ["Examples:", "", "```bash", *examples, "```", ""]
    return out


def cli_reference() -> str:
    """Every command, every option: the Markdown of the command-line reference."""
    lines: list[str] = []
    for name, parser in parsers().items():
        lines += command_section(name, parser)
    return "\n".join(lines)


def exit_code_table() -> str:
    """What each exit status of every command means (``search.errors.EXIT_CODES``)."""
    from search.errors import EXIT_CODES

    rows = ["| code | meaning |", "|---|---|"]
    rows += [f"| {code} | {escape(meaning)} |" for code, meaning in EXIT_CODES.items()]
    return "\n".join(rows)
