"""It checkpoints but never calls ctx.report."""

from __future__ import annotations

from typing import Any

from good import evaluate, load_data, make_model, make_optimizer, one_epoch

from search.task import Context

SPACE = "good.toml"
__all__ = ["load_data", "train"]


def train(params: dict[str, Any], ctx: Context) -> dict[str, float]:
    model = make_model(params)
    opt = make_optimizer(model, params)
    state = ctx.restore()
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
    start = 1 if state is None else state["epoch"] + 1
    for epoch in range(start, ctx.epochs + 1):
        one_epoch(model, opt, ctx.batches(ctx.data["x"], ctx.data["y"], batch_size=32))
        ctx.checkpoint(
            {"epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict()}
        )
    return evaluate(model, ctx.data)
