"""A run's learning history, epoch by epoch, and the one rule for the epoch a run is judged by.

No torch: the study stores these records on its trials, and the views read them back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class EpochRecord:
    epoch: int  # 1-based
    train_loss: float
    val_loss: float
    val_acc: float  # fraction in [0, 1]
    test_loss: float
    test_acc: float
    seconds: float  # training time of this epoch, evaluation excluded
    samples_seen: int  # training samples processed so far

    @classmethod
    def from_attr(cls, row: Mapping[str, Any]) -> EpochRecord:
        """A record as stored on a trial (``dataclasses.asdict``), read back."""
        return cls(**{f.name: row[f.name] for f in fields(cls)})


# How a run is judged: "last", its last epoch (what the kept model scores), or "best", the
# epoch of highest validation accuracy, the earliest on ties (the reference's rule, which picks
# an epoch after the fact, as early stopping would).
JUDGES = ("last", "best")
UNRECORDED_JUDGE = "best"  # the rule of runs stored before the rule itself was recorded


def judged_epoch(history: Iterable[EpochRecord], judge: str) -> EpochRecord | None:
    """The epoch a run is judged by (None before its first).

    Selection never looks at the test set; the test accuracy reported for a run is this
    epoch's.
    """
    if judge not in JUDGES:
        raise ValueError(f"judge: expected one of {', '.join(JUDGES)}, got {judge!r}")
    records = list(history)
    if judge == "last":
        return records[-1] if records else None
    return max(records, key=lambda r: (r.val_acc, -r.epoch), default=None)
