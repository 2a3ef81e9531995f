"""The README's quick start: its first code block installs and runs, its second is the test
command that CI runs exactly (and the Docker image installs with the first one's step)."""

from __future__ import annotations

from pathlib import Path

from .helpers import quick_start_commands

ROOT = Path(__file__).resolve().parent.parent


def test_the_quick_start_is_the_first_two_code_blocks_the_main_job_and_the_tests():
    run, test = quick_start_commands()
    assert run.endswith("python -m search.run --sampler grid") and "pip install" in run
    assert "python -m pytest -q" in test


def test_ci_runs_exactly_the_readmes_test_command():
    _, test = quick_start_commands()
    assert test in (ROOT / ".ci" / "run").read_text().splitlines()
