"""Its train raises in epoch 2."""

from __future__ import annotations

from typing import Any

from good import load_data

from search.task import Context

SPACE = "good.toml"
__all__ = ["load_data", "train"]


def train(params: dict[str, Any], ctx: Context) -> dict[str, float]:
    for epoch in range(1, ctx.epochs + 1):
        if epoch == 2:
            raise ValueError(f"hidden={params['hidden']} is too small for epoch {epoch}")
        ctx.report(epoch, val_acc=0.5)
        ctx.checkpoint({"epoch": epoch})
    return {"val_acc": 0.5}
