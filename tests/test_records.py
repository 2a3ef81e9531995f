"""Trial records stay where Optuna's own tools can use a study: few columns, short printouts."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

NAME = "mnist-ofat-e2-v200"  # the conftest's ofat_db
MAX_COLUMNS = 40  # of trials_dataframe() on the 15-point grid (63 before the records table)
MAX_BEST_TRIAL_BYTES = 4096  # of `optuna best-trial` (68 KB before)


@pytest.mark.slow
def test_trials_dataframe_of_the_ofat_grid_has_a_bounded_number_of_columns(ofat_db):
    study = optuna.load_study(study_name=NAME, storage=f"sqlite:///{ofat_db}")
    frame = study.trials_dataframe()
    assert len(frame) == 15 and len(frame.columns) <= MAX_COLUMNS, list(frame.columns)
    assert not [c for c in frame.columns if "claim" in c or "artifacts:" in c]


def test_optuna_best_trial_prints_a_short_table(ofat_db: Path):
    cli = Path(sys.executable).parent / "optuna"
    done = subprocess.run(
        [str(cli), "best-trial", "--storage", f"sqlite:///{ofat_db}", "--study-name", NAME],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert 0 < len(done.stdout.encode()) < MAX_BEST_TRIAL_BYTES


SEARCH = Path(__file__).resolve().parent.parent / "search"
ATTRIBUTE_ACCESS = re.compile(r"user_attrs\b|set_user_attr\(|set_trial_user_attr\(")
LITERAL = re.compile(r"""["'][A-Za-z_:]+["']""")


def test_every_record_key_is_spelled_in_the_records_module_only():
    spelled = [
        f"{path.relative_to(SEARCH)}:{n}: {line.strip()}"
        for path in sorted(SEARCH.rglob("*.py"))
        if path.name != "records.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if ATTRIBUTE_ACCESS.search(line) and LITERAL.search(line)
    ]
    assert spelled == []
