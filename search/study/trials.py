"""What a trial recorded, read back one way by workers, summaries, reports and the dashboard."""

from __future__ import annotations

from optuna.trial import FrozenTrial, Trial

from search.engine import history as run_history
from search.engine.history import EpochRecord
from search.study.space import Space


def judge_of(t: FrozenTrial | Trial) -> str:
    """The rule a trial is judged by, as it recorded it."""
    return t.user_attrs.get("judge", run_history.UNRECORDED_JUDGE)


def judged_epoch(t: FrozenTrial) -> EpochRecord | None:
    """The epoch the trial is judged by, from its stored history (None before its first), by
    the rule it was run with (trials from before the rule was recorded: the best epoch)."""
    history = (EpochRecord.from_attr(r) for r in t.user_attrs.get("history") or [])
    return run_history.judged_epoch(history, judge_of(t))


def note_of(t: FrozenTrial) -> str:
    """Why the trial ended as it did, where it says (pruned, diverged, failed)."""
    return t.user_attrs.get("reason") or t.user_attrs.get("fail_reason") or ""


def pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.2%}"


def progress_line(t: FrozenTrial, space: Space) -> str:
    """One line for a finished trial, as a worker prints it."""
    best = judged_epoch(t)
    seconds = t.user_attrs.get("seconds") or 0.0
    note = note_of(t)
    line = (
        f"trial {t.number} {space.describe(t.params) if t.params else ''}: {t.state.name} "
        f"val {pct(best.val_acc if best else None)} test {pct(best.test_acc if best else None)} "
        f"{seconds:.1f} s {note}"
    )
    return line.rstrip()
