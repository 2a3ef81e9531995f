"""The architecture's layers as tables, read from the code itself.

The layers and their order are the import contract in ``pyproject.toml`` (``lint-imports``
enforces it: imports only go down); each module's line is the first line of its docstring.
A module added, moved or renamed shows here at the next build, with no edit to ``docs/``.
Nothing here imports the package: the docstrings are read with ``ast``.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def contract_layers() -> list[list[str]]:
    """The "layers" contract's layers, top first, each a list of module names."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    (layers,) = [c["layers"] for c in contracts if c.get("type") == "layers"]
    return [[name.strip() for name in layer.split("|")] for layer in layers]


def summary(path: Path) -> str:
    """The first sentence of a module's docstring, reST's ``code`` as Markdown's."""
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    paragraph = " ".join(doc.strip().split("\n\n")[0].split())
    first = re.split(r"(?<=\.)\s+(?=[A-Z`(])", paragraph)[0]
    return re.sub(r"``([^`]*)``", r"`\1`", first).replace("|", "\\|")


def modules_of(name: str) -> list[tuple[str, Path]]:
    """(dotted name, file) of a layer's module, or of every module of its package."""
    base = ROOT.joinpath(*name.split("."))
    if base.with_suffix(".py").is_file():
        return [(name, base.with_suffix(".py"))]
    found = []
    for path in sorted(base.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        dotted = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found.append((dotted, path))
    return found


def layers_tables() -> str:
    """One table per layer, top first: each module with what it is."""
    out: list[str] = []
    for number, layer in enumerate(contract_layers(), start=1):
        out += [f"**Layer {number}: {', '.join(f'`{n}`' for n in layer)}**", ""]
        out += ["| module | what it is |", "|---|---|"]
        for name in layer:
            for dotted, path in modules_of(name):
                out.append(f"| `{dotted}` | {summary(path)} |")
        out.append("")
    return "\n".join(out)
