"""A task that uses the whole contract, for the service tests (tests/test_task_service.py).

good.py's classifier on the same kind of synthetic data with a test split besides, minimising
``val_loss``. It reports and checkpoints every epoch, keeps its weights, and in the final step
trains on the training and validation data and reads its test split once at the end; where
``$SEARCH_TEST_TEST_READS`` names a file, each test read appends a line to it (its seed and
parameters), so a test can count them.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import torch
from good import make_model, make_optimizer, one_epoch
from torch import nn

from search.task import Context, DataContext

SPACE = "good.toml"
OBJECTIVE = ("val_loss", "minimize")
EXAMPLES = 300  # training examples at most; 100 more each for validation and test
TEST_READS = "SEARCH_TEST_TEST_READS"


def load_data(ctx: DataContext) -> dict[str, torch.Tensor]:
    n = min(ctx.train_limit or EXAMPLES, EXAMPLES)
    g = torch.Generator().manual_seed(ctx.seed)
    x = torch.randn(n + 200, 8, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    train = n + 100 if ctx.final else n  # the final step trains on the validation data too
    return {
        "x": x[:train],
        "y": y[:train],
        "val_x": x[n : n + 100],
        "val_y": y[n : n + 100],
        "test_x": x[n + 100 :],
        "test_y": y[n + 100 :],
    }


@torch.no_grad()
def score(model: nn.Module, data: dict[str, torch.Tensor], split: str) -> dict[str, float]:
    """``SPLIT_loss`` and ``SPLIT_acc`` of the model on ``val`` or ``test``."""
    model.eval()
    x, y = data[f"{split}_x"], data[f"{split}_y"]
    logits = model(x)
    return {
        f"{split}_loss": nn.functional.cross_entropy(logits, y).item(),
        f"{split}_acc": (logits.argmax(1) == y).float().mean().item(),
    }


def train(params: dict[str, Any], ctx: Context) -> dict[str, float]:
    model = make_model(params)
    opt = make_optimizer(model, params)
    state = ctx.restore()
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
    start = 1 if state is None else state["epoch"] + 1
    for epoch in range(start, ctx.epochs + 1):
        began = time.perf_counter()
        train_loss = one_epoch(
            model, opt, ctx.batches(ctx.data["x"], ctx.data["y"], batch_size=32)
        )
        seconds = time.perf_counter() - began
        val = {} if ctx.final else score(model, ctx.data, "val")
        ctx.report(epoch, train_loss=train_loss, epoch_seconds=seconds, **val)
        ctx.checkpoint(
            {"epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict()}
        )
    ctx.save_weights(model)
    if not ctx.final:
        return score(model, ctx.data, "val")
    reads = os.environ.get(TEST_READS)
    if reads:
        with open(reads, "a") as f:
            f.write(json.dumps({"seed": ctx.seed, "params": params}, sort_keys=True) + "\n")
    return score(model, ctx.data, "test")
