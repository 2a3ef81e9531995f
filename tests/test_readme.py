"""The README's quick start: its first code block installs and runs, its second is the test
command that CI runs exactly (and the Docker image installs with the first one's step)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def quick_start_commands() -> list[str]:
    """The README's first two code blocks: the command that installs the project and runs the
    reference grid, and the test command."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"^```(\w*)\n(.*?)^```", text, re.S | re.M)
    return [script.strip() for _, script in blocks[:2]]


def test_the_quick_start_is_the_first_two_code_blocks_the_main_job_and_the_tests():
    run, test = quick_start_commands()
    assert run.endswith("python -m search.run --sampler grid") and "pip install" in run
    assert test.endswith("python -m pytest -q")


def test_ci_runs_exactly_the_readmes_test_command():
    _, test = quick_start_commands()
    assert test in (ROOT / ".ci" / "run").read_text().splitlines()
