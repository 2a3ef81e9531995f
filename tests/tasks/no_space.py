"""Has no space: no no_space.toml beside it and no SPACE in it."""

from __future__ import annotations

from typing import Any


def train(params: dict[str, Any], ctx: Any) -> dict[str, float]:
    return {"val_loss": 1.0}
