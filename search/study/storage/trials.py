"""What a trial ended with, read back one way by workers, summaries, reports and the dashboard.

A trial records the metrics its task returned (``records.METRICS``); a pruned one, those of
its last reported epoch. Trials of the built-in MLP stored before that kept only their
history, and are judged from it by the rule they ran with.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, Trial, TrialState

from search.engine import history as run_history
from search.engine.history import EpochRecord
from search.study.space.space import Space
from search.study.storage import records

TIMING = ("seconds", "samples_seen", "epoch")  # reported with the metrics, not metrics


def state_counts(study: optuna.Study) -> Counter[str]:
    """How many of the study's trials are in each state, by name. Optuna's trial cache reads
    only the trials that changed since the last call, so a worker may ask this often."""
    return Counter(t.state.name for t in study.get_trials(deepcopy=False))


def ranked(study: optuna.Study) -> list[FrozenTrial]:
    """The complete trials, best first by the first objective (its direction)."""
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    sign = -1 if study.directions[0] == StudyDirection.MAXIMIZE else 1
    return sorted(done, key=lambda t: (sign * t.values[0], t.number))


def judge_of(t: FrozenTrial | Trial) -> str:
    """The rule a trial of the MLP is judged by, as it recorded it."""
    return t.user_attrs.get(records.JUDGE, run_history.UNRECORDED_JUDGE)


def final_metrics(t: FrozenTrial) -> dict[str, float]:
    """The metrics the trial ended with (none for one that failed before any)."""
    found = records.metrics_of(t)
    old = records.old_history(t)
    if found or old is None:
        return found
    rows = (EpochRecord.from_attr(r) for r in old)  # a trial from before the records table
    judged = run_history.judged_epoch(rows, judge_of(t))
    return {} if judged is None else {k: v for k, v in asdict(judged).items() if k not in TIMING}


def pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.2%}"


def shown(name: str, value: float | None) -> str:
    """A metric as people read it: accuracies in percent, the rest in 4 figures."""
    if value is None:
        return "-"
    return pct(value) if name.endswith(("acc", "accuracy")) else f"{value:.4g}"


def metrics_text(t: FrozenTrial) -> str:
    """ "val 97.98% test 97.87%" for the MLP; "val_rmse 0.5321" for a task."""
    m = final_metrics(t)
    if "val_acc" in m and "test_acc" in m:
        return f"val {pct(m['val_acc'])} test {pct(m['test_acc'])}"
    return " ".join(f"{k} {shown(k, v)}" for k, v in m.items() if k not in TIMING) or "-"


def progress_line(t: FrozenTrial, space: Space) -> str:
    """One line for a finished trial, as a worker prints it."""
    seconds = t.user_attrs.get(records.SECONDS) or 0.0
    line = (
        f"trial {t.number} {space.describe(t.params) if t.params else ''}: {t.state.name} "
        f"{metrics_text(t)} {seconds:.1f} s {records.note_of(t)}"
    )
    return line.rstrip()
