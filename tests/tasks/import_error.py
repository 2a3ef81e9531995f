"""Raises while it is imported: a statement at module level divides by zero."""

from __future__ import annotations

from typing import Any

SPACE = "broken.toml"
BATCHES = 0
PER_BATCH = 300 // BATCHES


def train(params: dict[str, Any], ctx: Any) -> dict[str, float]:
    return {"val_loss": 1.0}
