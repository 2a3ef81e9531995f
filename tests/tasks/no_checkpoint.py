"""It reports every epoch but never calls ctx.checkpoint (nor ctx.restore)."""

from __future__ import annotations

from typing import Any

from good import evaluate, load_data, make_model, make_optimizer, one_epoch

from search.task import Context

SPACE = "good.toml"
__all__ = ["load_data", "train"]


def train(params: dict[str, Any], ctx: Context) -> dict[str, float]:
    model = make_model(params)
    opt = make_optimizer(model, params)
    for epoch in range(1, ctx.epochs + 1):
        train_loss = one_epoch(
            model, opt, ctx.batches(ctx.data["x"], ctx.data["y"], batch_size=32)
        )
        ctx.report(epoch, train_loss=train_loss, **evaluate(model, ctx.data))
    return evaluate(model, ctx.data)
