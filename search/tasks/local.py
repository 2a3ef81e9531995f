"""Running a task outside a study: in this process, its reports kept in memory.

``search.check`` runs a task this way (straight through, then stopped and resumed), and so do
tests of a task. A ``LocalRecorder`` is the service side of a ``Context`` (``search.task``):
it keeps every reported epoch, and its checkpoints in a folder, written as a study's are.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

CHECKPOINT = "checkpoint.pt"


class Stop(BaseException):  # noqa: N818 - like KeyboardInterrupt, which a task does not catch
    """Ends a run right after a checkpoint, as a preemption would."""


@dataclass
class LocalRecorder:
    """Reports in ``history``; checkpoints in ``folder``. ``stop_after``: raise ``Stop`` once
    the checkpoint of that epoch is kept. ``resume``: start from the folder's checkpoint."""

    folder: Path
    stop_after: int | None = None
    resume: bool = False
    history: list[dict[str, float]] = field(default_factory=list)
    checkpoints: int = 0

    def report(self, epoch: int, metrics: dict[str, float]) -> str | None:
        self.history.append({"epoch": epoch, **metrics})
        return None

    def save(self, payload: dict[str, Any]) -> None:
        epoch = self.history[-1]["epoch"] if self.history else 0
        save_checkpoint(self.folder / CHECKPOINT, {**payload, "history": list(self.history)})
        self.checkpoints += 1
        if self.stop_after is not None and epoch >= self.stop_after:
            raise Stop

    def load(self) -> dict[str, Any] | None:
        path = self.folder / CHECKPOINT
        if not self.resume or not path.exists():
            return None
        payload = load_checkpoint(path)
        self.history = list(payload.pop("history"))
        return payload


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write beside ``path`` and move into place: a stop midway never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.part")
    torch.save(payload, part)
    os.replace(part, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Tensors and plain values only (``weights_only``): loading runs no pickled code."""
    return torch.load(path, weights_only=True)
