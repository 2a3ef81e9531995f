"""It shuffles with a NumPy generator of its own, without a seed: no two runs are alike."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from good import evaluate, load_data, make_model, make_optimizer, one_epoch

from search.task import Context

SPACE = "good.toml"
__all__ = ["load_data", "train"]


def train(params: dict[str, Any], ctx: Context) -> dict[str, float]:
    rng = np.random.default_rng()  # the bug: unseeded, and outside the checkpoint
    model = make_model(params)
    opt = make_optimizer(model, params)
    state = ctx.restore()
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
    start = 1 if state is None else state["epoch"] + 1
    x, y = ctx.data["x"], ctx.data["y"]
    for epoch in range(start, ctx.epochs + 1):
        order = torch.from_numpy(rng.permutation(len(x)))
        batches = ((x[i], y[i]) for i in order.split(32))
        ctx.report(epoch, train_loss=one_epoch(model, opt, batches), **evaluate(model, ctx.data))
        ctx.checkpoint(
            {"epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict()}
        )
    return evaluate(model, ctx.data)
