"""It diverges: reports a NaN val_loss ("report") or returns an infinite one ("return")."""

from __future__ import annotations

from typing import Any


def train(params: dict[str, Any], ctx: Any) -> dict[str, float]:
    for epoch in range(1, 3):
        nan = params["diverges"] == "report" and epoch == 2
        ctx.report(epoch, val_loss=float("nan") if nan else 1.0 / epoch)
    return {"val_loss": float("inf") if params["diverges"] == "return" else 0.5}
