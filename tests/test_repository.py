"""The repository holds source, never results: no databases, artifacts, weights or big files."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_BYTES = 1_000_000
# A path that would be a result anywhere else, kept on purpose: (path, why).
EXCEPTIONS = {
    "study_db/.gitkeep": "keeps the default database folder in a fresh clone",
}
RESULTS = re.compile(
    r"(^|/)(study_db|artifacts|reports)/"  # database and artifact folders at any depth
    r"|\.(db|db-wal|db-shm|sqlite3?|lock|pt|pth|ckpt|safetensors)$"  # databases, weights
    r"|(^|/)slurm-\d+(_\d+)?\.out$"  # SLURM logs
    r"|(^|/)\.coverage$"
)


def tracked_files() -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        if os.environ.get("CI"):
            pytest.fail("CI is set but this is not a git checkout")
        pytest.skip("not a git checkout")
    done = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
    )
    return [p for p in done.stdout.decode().split("\0") if p]


def test_git_tracks_no_database_artifact_or_weight_file():
    results = [p for p in tracked_files() if RESULTS.search(p) and p not in EXCEPTIONS]
    assert results == [], f"results are tracked; git rm --cached them: {results[:10]}"


def test_git_tracks_no_file_over_one_megabyte():
    big = [
        p
        for p in tracked_files()
        if (ROOT / p).is_file() and (ROOT / p).stat().st_size > MAX_BYTES
    ]
    assert big == []


def test_every_exception_is_still_there():
    assert set(EXCEPTIONS) <= set(tracked_files())
