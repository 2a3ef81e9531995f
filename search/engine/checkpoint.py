"""A run's checkpoint: everything ``fit`` needs to go on from the end of an epoch, bit for bit.

The parameters and the optimizer's state (one flat buffer each), its step count (which also
places the learning-rate schedule), the random states (the global one that draws dropout
masks, the batch order's generator, and CUDA's on a GPU), and the history so far. A run
resumed from the checkpoint of epoch k trains epoch k + 1 from exactly the state the
uninterrupted run had there, so on the CPU it ends with exactly the same history.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from search.engine.history import EpochRecord


@dataclass
class Checkpoint:
    epoch: int  # the last epoch finished
    params: torch.Tensor  # the optimizer's flat parameter buffer
    state: list[torch.Tensor]  # the optimizer's flat state buffers
    steps: int  # optimizer steps taken
    rng: torch.Tensor  # torch.get_rng_state(): dropout masks
    batch_rng: torch.Tensor  # the batch order's generator
    cuda_rng: torch.Tensor | None = None
    history: list[EpochRecord] = field(default_factory=list)
    curve: list[tuple[int, float]] = field(default_factory=list)
    seen: int = 0  # training samples processed so far

    def to_state(self) -> dict[str, Any]:
        """Tensors and plain values, as ``torch.load(weights_only=True)`` reads them."""
        return {**self.__dict__, "history": [asdict(r) for r in self.history]}

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> Checkpoint:
        data = {**data, "history": [EpochRecord.from_attr(r) for r in data["history"]]}
        data["curve"] = [tuple(p) for p in data["curve"]]
        return cls(**data)

    def save(self, path: Path) -> None:
        """Write it beside ``path`` and move it into place: a reader, or a stop in the middle,
        never sees half a checkpoint."""
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(f".{path.name}.part")
        torch.save(self.to_state(), part)
        os.replace(part, path)

    @classmethod
    def load(cls, path: Path) -> Checkpoint:
        """Read one back; tensors and plain values only (``weights_only``: no code runs)."""
        return cls.from_state(torch.load(path, weights_only=True))
