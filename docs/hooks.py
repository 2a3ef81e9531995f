"""mkdocs hooks (``hooks:`` in mkdocs.yml): the generated parts of the pages, and a check that
every module or file a page names exists.

A page asks for a generated part with a line of its own, ``<!-- generate: NAME -->``; NAME is
one of ``GENERATORS``. Each part is rendered from the code at build time (the argparse parsers,
the MLP's vocabulary, the exit codes, the import contract), so it has one source of truth and
``docs/`` holds no copy of it. A path (``search/study/running/runner.py``,
``examples/digits.py``) or a
module (``search.engine.history``) that a page names and the repository does not have is a
warning, which ``mkdocs build --strict`` turns into a failed build: a renamed module is found
on the page that names it.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))  # the generators beside this file

import gen_architecture  # noqa: E402
import gen_cli  # noqa: E402
import gen_samplers  # noqa: E402
import gen_vocabulary  # noqa: E402

log = logging.getLogger("mkdocs.plugins.search_docs")  # mkdocs counts its warnings

GENERATORS: dict[str, Callable[[], str]] = {
    "cli": gen_cli.cli_reference,
    "exit_codes": gen_cli.exit_code_table,
    "vocabulary": gen_vocabulary.vocabulary_table,
    "base_rates": gen_vocabulary.base_rates,
    "samplers": gen_samplers.samplers_table,
    "layers": gen_architecture.layers_tables,
}
MARKER = re.compile(r"^<!-- generate: (\w+) -->$", re.M)
TOP_FOLDERS = "search|examples|deploy|benchmarks|docker|tests"
FILE_PATH = re.compile(rf"(?<![\w/.-])((?:{TOP_FOLDERS})/[\w./-]*)")
MODULE = re.compile(r"(?<![\w/.-])search((?:\.[A-Za-z_]\w*)+)")


def generated(match: re.Match[str]) -> str:
    name = match.group(1)
    if name not in GENERATORS:
        log.warning("<!-- generate: %s -->: no such generator (%s)", name, ", ".join(GENERATORS))
        return ""
    return GENERATORS[name]()


def module_exists(parts: list[str]) -> bool:
    """Whether ``search.<parts>`` names a module or package; what follows a module is an
    attribute of it, and is not checked."""
    path = ROOT / "search"
    for part in parts:
        if part.isupper():  # a placeholder: search.NAME
            return True
        if (path / part).is_dir():
            path = path / part
        else:
            return (path / f"{part}.py").is_file()
    return True


def missing_names(markdown: str) -> list[str]:
    """The paths and modules a page names that the repository does not have."""
    missing = []
    for path in FILE_PATH.findall(markdown):
        cleaned = path.rstrip(".")
        if not (ROOT / cleaned).exists() and not any(c.isupper() for c in cleaned):
            missing.append(cleaned)
    for dotted in MODULE.findall(markdown):
        if not module_exists(dotted.strip(".").split(".")):
            missing.append(f"search{dotted}")
    return sorted(set(missing))


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    for name in missing_names(markdown):
        log.warning("%s names %s, which the repository does not have", page.file.src_uri, name)
    return MARKER.sub(generated, markdown)
