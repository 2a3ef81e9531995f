"""The README's quick start is what CI runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, re.S)]


def test_quick_start_has_two_commands_the_main_job_and_the_tests():
    run, test = quick_start_commands()
    assert "python -m search.run --sampler grid" in run
    assert "pytest" in test


def test_ci_runs_exactly_the_readmes_test_command():
    _, test = quick_start_commands()
    assert test in (ROOT / ".ci" / "run").read_text().splitlines()


def test_the_layout_section_names_every_module_in_its_layer():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Layout", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1] for line in section.splitlines() if line.startswith("| ")}
    for folder in ("engine", "study", "views"):
        (row,) = [r for r in rows if f"`search/{folder}/`" in r]
        for module in sorted((ROOT / "search" / folder).glob("*.py")):
            if module.name != "__init__.py":
                assert f"`{module.name}`" in row, f"search/{folder}/{module.name} is not listed"
    (top,) = [r for r in rows if "entry points" in r]
    for module in sorted((ROOT / "search").glob("*.py")):
        if module.name not in ("__init__.py", "errors.py"):
            assert module.name in top, f"search/{module.name} is not listed"
