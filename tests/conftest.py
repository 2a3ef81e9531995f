"""Shared fixtures: small synthetic MNIST-shaped datasets written as real IDX files, a fresh
PostgreSQL database, the ofat study's data, and file modes put back after a test. Shared
helper functions live in tests/helpers.py."""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections import Counter
from pathlib import Path

import pytest

# Three test processes share two cores, and a run's processes start more: torch's OpenMP threads,
# one per core in each, spin while they wait and slow every one of them. One thread each here
# and in every process a test starts (they inherit it); set before torch is imported.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from search.engine.data import DataConfig, Splits, load

from .helpers import make_dataset

REAL_DATA = os.environ.get("SEARCH_DATA_DIR")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files with the most ``slow`` tests first. The test command hands each of its test
    processes a file at a time, in this order (``--dist loadfile --no-loadscope-reorder``), so
    the long files start early and the processes end together; a file keeps its own order."""
    slow = Counter(item.path for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[item.path])  # stable: each file's tests stay together


PG = os.environ.get("SEARCH_TEST_POSTGRES_URL")
# A reader's quick-look caps (docs/getting-started.md) are search.run's defaults when set; the
# tests' own runs choose their caps themselves (tests/test_docs.py sets them for the docs).
for _cap in ("SEARCH_MAX_EPOCHS", "SEARCH_TRAIN_LIMIT"):
    os.environ.pop(_cap, None)


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root with 1,200 training and 300 test images of synthetic digits."""
    return make_dataset(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def tiny_splits(tiny_root: Path) -> Splits:
    return load(DataConfig(data_dir=str(tiny_root), val_size=200))


@pytest.fixture(scope="session")
def real_root() -> Path:
    if not REAL_DATA or not (Path(REAL_DATA) / "MNIST" / "raw").is_dir():
        if os.environ.get("CI"):  # CI provides the data: never skip silently there
            pytest.fail("CI is set but SEARCH_DATA_DIR does not hold MNIST/raw")
        pytest.skip(
            "real MNIST not found: set SEARCH_DATA_DIR to a folder holding MNIST/raw "
            "(this machine cannot download it)"
        )
    return Path(REAL_DATA)


@pytest.fixture(scope="session")
def ofat_db(tiny_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished ofat study, mnist-ofat-e2-v200 (2 epochs on tiny data), with its artifacts
    beside it; shared by the tests that only read it."""
    from search.run import main

    db = tmp_path_factory.mktemp("ofat") / "s.db"
    argv = ["--data-dir", str(tiny_root), "--storage", f"sqlite:///{db}", "--val-size", "200"]
    assert main([*argv, "--quiet", "--workers", "1", "--max-epochs", "2"]) == 0
    return db


@pytest.fixture
def pg_url():
    """A fresh PostgreSQL database of its own, dropped afterwards."""
    if not PG:
        if os.environ.get("CI"):
            pytest.fail("CI is set but SEARCH_TEST_POSTGRES_URL is not")
        pytest.skip(
            "SEARCH_TEST_POSTGRES_URL is unset (e.g. postgresql+psycopg://postgres@"
            "127.0.0.1:5432/postgres)"
        )
    import sqlalchemy

    name = f"search_test_{uuid.uuid4().hex[:10]}"
    admin = sqlalchemy.create_engine(PG, isolation_level="AUTOCOMMIT")
    with admin.connect() as con:
        con.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sqlalchemy.engine.make_url(PG).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as con:
        con.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def modes():
    """``modes(path, mode)``: chmod for one test; the modes are put back after it, so that
    pytest can remove its temporary folders."""
    changed: list[tuple[Path, int]] = []

    def chmod(path: Path, mode: int) -> None:
        changed.append((path, path.stat().st_mode))
        path.chmod(mode)

    yield chmod
    for path, mode in reversed(changed):
        with contextlib.suppress(FileNotFoundError):  # SQLite's log, gone with its connection
            path.chmod(mode)


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never reach the internet: a download attempt fails at once on a closed port."""
    import torchvision.datasets as tvd

    for cls in (tvd.MNIST, tvd.FashionMNIST, tvd.KMNIST):
        monkeypatch.setattr(cls, "mirrors", ["http://127.0.0.1:9/"], raising=False)


@pytest.fixture
def pause(tmp_path: Path):
    """``pause(after_epochs)``: a Pause (tests/pausing.py) closed when the test ends."""
    from .pausing import Pause

    made: list[Pause] = []

    def make(after_epochs: int, at_batch: int = 0) -> Pause:
        made.append(Pause(tmp_path / f"pause-{len(made)}", after_epochs, at_batch))
        return made[-1]

    yield make
    for p in made:
        p.close()


ROOT = Path(__file__).resolve().parent.parent
CACHES = (".venv/", ".pytest_cache/", ".ruff_cache/", ".import_linter_cache/", "search.egg-info/")


def stray_files() -> set[str] | None:
    """Files in the source tree that git does not track (ignored ones too), caches aside;
    None outside a git checkout."""
    try:
        done = subprocess.run(
            ["git", "status", "--porcelain", "--ignored", "--untracked-files=all"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except OSError:
        return None
    if done.returncode:
        return None
    paths = {line[3:].strip('"') for line in done.stdout.splitlines() if line[:2] in ("??", "!!")}
    return {p for p in paths if not p.startswith(CACHES) and "__pycache__" not in p}


@pytest.fixture(scope="session", autouse=True)
def source_tree_stays_clean():
    """No test writes into the source tree: databases, artifacts and weights go to tmp_path."""
    before = stray_files()
    yield
    after = stray_files()
    if before is not None and after is not None and after - before:
        pytest.fail(f"tests wrote into the source tree: {sorted(after - before)[:10]}")
