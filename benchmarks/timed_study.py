"""Shared by the search benchmarks: run ``search.run`` for a fixed wall time, then stop it.

The study runs as a child process with every core (its default workers). At the deadline the
child and its workers get SIGINT, as from a terminal's Ctrl-C: trials still running are marked
failed, so only trials that finished within the budget count. Selection uses validation
accuracy only; the test accuracy of the chosen trial is read from its judged epoch.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.study.storage.trials import final_metrics

STOP_GRACE_S = 60  # how long the child may take to stop after SIGINT


@dataclass(frozen=True)
class Outcome:
    best: FrozenTrial | None  # the best trial by validation accuracy, finished in time
    found_after_s: float | None  # when it finished, from the start
    completed: int  # trials finished in time
    wall_s: float

    @property
    def val(self) -> float | None:
        return self.best.values[0] if self.best else None

    @property
    def test(self) -> float | None:
        return final_metrics(self.best).get("test_acc") if self.best else None


def run_for(argv: list[str], seconds: float, storage: str, study_name: str, log: Path) -> Outcome:
    """``python -m search.run ARGV`` for ``seconds`` of wall time; the trials done by then."""
    start_wall, start = datetime.now(), time.perf_counter()
    command = [sys.executable, "-m", "search.run", *argv, "--storage", storage]
    command += ["--study-name", study_name, "--timeout", str(seconds), "--quiet"]
    with open(log, "a") as out:
        child = subprocess.Popen(
            command,
            stdout=out,
            stderr=out,
            start_new_session=True,
            # A shell's background job inherits SIGINT ignored; the study must hear it.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        try:
            child.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGINT)
            child.wait(timeout=STOP_GRACE_S)
    wall = time.perf_counter() - start
    if child.returncode not in (0, 130):
        raise SystemExit(f"search.run {' '.join(argv)} failed ({child.returncode}); see {log}")
    study = optuna.load_study(study_name=study_name, storage=storage)
    deadline = start_wall + timedelta(seconds=seconds)
    done = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.datetime_complete and t.datetime_complete <= deadline
    ]
    best = max(done, key=lambda t: (t.values[0], -t.number), default=None)
    found = (best.datetime_complete - start_wall).total_seconds() if best else None
    return Outcome(best, found, len(done), wall)
