"""The Docker files: compose validates, and the image installs exactly as the README says."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .helpers import quick_start_commands

ROOT = Path(__file__).resolve().parent.parent


def test_the_image_installs_the_project_with_the_readmes_step():
    run, _ = quick_start_commands()
    install = run.split(" && .venv/bin/python")[0]
    assert f"RUN {install}\n" in (ROOT / "docker" / "Dockerfile").read_text()


def test_docker_compose_accepts_the_compose_file():
    tool = shutil.which("docker-compose")
    if tool is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but docker-compose is missing (.ci/run installs it)")
        pytest.skip("docker-compose is not installed: apt-get install docker-compose")
    done = subprocess.run(
        [tool, "-f", str(ROOT / "docker" / "compose.yaml"), "config"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    for service in ("postgres", "create-study", "worker", "dashboard"):
        assert f"{service}:" in done.stdout
    assert "127.0.0.1" in done.stdout  # the dashboard is bound to this machine by default


def test_the_compose_file_keeps_the_database_password_off_every_command_line():
    text = (ROOT / "docker" / "compose.yaml").read_text()
    commands = [line for line in text.splitlines() if "command:" in line or "--" in line]
    assert commands and not [c for c in commands if "PASSWORD" in c or "@" in c]
    assert "SEARCH_STORAGE: postgresql+psycopg://search@postgres" in text
    assert "PGPASSWORD: ${POSTGRES_PASSWORD" in text


def build_context() -> set[str]:
    """The files ``docker build .`` sends, by Docker's own reading of .dockerignore."""
    from docker.utils.build import exclude_paths

    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    return exclude_paths(str(ROOT), patterns, dockerfile="docker/Dockerfile")


def test_the_build_context_holds_the_package_and_nothing_the_image_does_not_run():
    context = build_context()
    needed = {"pyproject.toml", "README.md", "search/run.py", "search/spaces/default.toml"}
    assert needed <= context
    tops = {p.split("/")[0] for p in context}
    assert not tops & {"tests", "benchmarks", ".git", ".venv", "study_db", "reports", "data"}
    assert not [p for p in context if "__pycache__" in p or p.endswith((".db", ".pt"))]
