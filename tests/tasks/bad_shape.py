"""Its train raises ValueError("bad shape"), with x - 1 more lines of detail for point x."""

from __future__ import annotations

from typing import Any

SPACE = "broken.toml"


def train(params: dict[str, Any], ctx: Any) -> dict[str, float]:
    ctx.report(1, val_loss=0.5)
    raise ValueError("bad shape" + "\n  expected 8 columns, got 9" * (params["x"] - 1))
