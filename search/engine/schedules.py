"""Learning-rate schedules: the rate of every optimizer step of a run, computed before it starts.

A table of one rate per step lets the optimizer change its rate every step at the cost of a
lookup: the compiled CPU loop reads the step's entry, and on a GPU the entry is picked by the
device-side step count, so a captured CUDA graph replays the schedule with no host work.
Each schedule equals PyTorch's own (``torch.optim.lr_scheduler``, stepped once per batch);
``tests/test_schedules.py`` checks them against it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SCHEDULES = ("constant", "step", "cosine", "onecycle")
ONECYCLE_WARMUP = 0.3  # OneCycleLR's pct_start: the share of the steps spent rising
ONECYCLE_DIV, ONECYCLE_FINAL_DIV = 25.0, 1e4  # OneCycleLR's start and end: max / 25, / 1e4 more


@dataclass(frozen=True)
class Schedule:
    """How the rate moves over a run: ``kind``, with ``gamma`` (step) or warm-up (cosine)."""

    kind: str = "constant"
    gamma: float = 0.7  # step: the rate is multiplied by this after every epoch
    warmup_epochs: float = 0.0  # cosine: linear rise from 0 to the rate over these epochs

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULES:
            raise ValueError(
                f"schedule: expected one of {', '.join(SCHEDULES)}, got {self.kind!r}"
            )
        if not 0 < self.gamma <= 1:
            raise ValueError(f"gamma: expected a factor in (0, 1], got {self.gamma!r}")
        if self.warmup_epochs < 0:
            raise ValueError(f"warmup_epochs: expected 0 or more, got {self.warmup_epochs!r}")

    def rates(self, lr: float, steps_per_epoch: int, epochs: int) -> list[float]:
        """The rate of each of the run's ``steps_per_epoch * epochs`` steps."""
        total = steps_per_epoch * epochs
        if self.kind == "constant":
            return [lr] * total
        if self.kind == "step":
            return [lr * self.gamma ** (k // steps_per_epoch) for k in range(total)]
        if self.kind == "cosine":
            warm = round(self.warmup_epochs * steps_per_epoch)
            if warm >= total:
                raise ValueError(
                    f"warmup_epochs: {self.warmup_epochs} is not shorter than the run's "
                    f"{epochs} epochs; give fewer warm-up epochs or more epochs"
                )
            rise = [lr * (k + 1) / warm for k in range(warm)]
            fall = total - warm
            return rise + [lr * (1 + math.cos(math.pi * k / fall)) / 2 for k in range(fall)]
        return _one_cycle(lr, total)


def _one_cycle(lr: float, total: int) -> list[float]:
    """torch's OneCycleLR with its defaults (cosine annealing, two phases), without momentum."""
    start, peak_at = lr / ONECYCLE_DIV, ONECYCLE_WARMUP * total - 1
    end = start / ONECYCLE_FINAL_DIV

    def anneal(a: float, b: float, pct: float) -> float:
        return b + (a - b) / 2 * (1 + math.cos(math.pi * pct))

    out = []
    for k in range(total):
        if k <= peak_at:
            out.append(anneal(start, lr, k / peak_at))
        else:
            out.append(anneal(lr, end, (k - peak_at) / (total - 1 - peak_at)))
    return out
