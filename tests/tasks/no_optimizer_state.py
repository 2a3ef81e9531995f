"""Its checkpoint leaves out the optimizer's state (SGD's momentum): resuming is not exact."""

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
    start = 1 if state is None else state["epoch"] + 1
    for epoch in range(start, ctx.epochs + 1):
        train_loss = one_epoch(
            model, opt, ctx.batches(ctx.data["x"], ctx.data["y"], batch_size=32)
        )
        ctx.report(epoch, train_loss=train_loss, **evaluate(model, ctx.data))
        ctx.checkpoint({"epoch": epoch, "model": model.state_dict()})  # no "optimizer"
    return evaluate(model, ctx.data)
