"""Example task: a small MLP on scikit-learn's bundled 8x8 handwritten digits.

Search its space (``digits.toml`` beside this file) for the best validation accuracy::

    python -m search.run --task examples/digits.py

The 1,797 images ship with scikit-learn (no download). A fifth of them is the test set, split
with a fixed seed so every study and every seed scores on the same images; a fifth of the rest
is the validation set, split with the study's seed. Copy this file to start a task of your own.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from search.task import Context, DataContext

Split = tuple[torch.Tensor, torch.Tensor]


def load_data(ctx: DataContext) -> dict[str, Split]:
    """Train and validation splits; in the final step, train (training plus validation) and
    test. At most ``ctx.train_limit`` training images."""
    x, y = load_digits(return_X_y=True)
    x = x / 16.0  # pixel intensities run from 0 to 16
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=0.2, random_state=0, stratify=y
    )
    if ctx.final:
        splits = {"train": (x_rest, y_rest), "test": (x_test, y_test)}
    else:
        x_train, x_val, y_train, y_val = train_test_split(
            x_rest, y_rest, test_size=0.2, random_state=ctx.seed, stratify=y_rest
        )
        splits = {"train": (x_train, y_train), "val": (x_val, y_val)}
    x_train, y_train = splits["train"]
    splits["train"] = (x_train[: ctx.train_limit], y_train[: ctx.train_limit])
    return {
        name: (
            torch.tensor(xs, dtype=torch.float32, device=ctx.device),
            torch.tensor(ys, dtype=torch.int64, device=ctx.device),
        )
        for name, (xs, ys) in splits.items()
    }


def train(params: dict[str, Any], ctx: Context) -> dict[str, float]:
    hidden = params["hidden"]
    model = nn.Sequential(
        nn.Linear(64, hidden),
        nn.ReLU(),
        nn.Dropout(params["dropout"]),
        nn.Linear(hidden, 10),
    ).to(ctx.device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=params["lr"], weight_decay=params["weight_decay"]
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=ctx.epochs)

    state = ctx.restore()  # None, or the last checkpoint of this point's interrupted run
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
    start = 1 if state is None else state["epoch"] + 1

    for epoch in range(start, ctx.epochs + 1):
        metrics = {"train_loss": train_epoch(model, optimizer, ctx, params["batch_size"])}
        scheduler.step()
        if not ctx.final:  # the final step has no validation set, and never peeks at test
            metrics |= evaluate(model, *ctx.data["val"], ctx, prefix="val")
        ctx.report(epoch, **metrics)
        ctx.checkpoint(
            {
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
            }
        )

    ctx.save_weights(model)  # the final step keeps the winner's; a search, the best trial's
    if ctx.final:
        return evaluate(model, *ctx.data["test"], ctx, prefix="test")
    return evaluate(model, *ctx.data["val"], ctx, prefix="val")


def train_epoch(
    model: nn.Module, optimizer: torch.optim.Optimizer, ctx: Context, batch_size: int
) -> float:
    """One pass over the training set in a fresh order; the mean training loss."""
    model.train()
    x, y = ctx.data["train"]
    total = torch.zeros((), device=ctx.device)
    for xb, yb in ctx.batches(x, y, batch_size=batch_size):
        with ctx.autocast():
            loss = F.cross_entropy(model(xb), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.detach() * len(yb)
    return total.item() / len(y)


@torch.no_grad()
def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: Context, prefix: str
) -> dict[str, float]:
    model.eval()
    with ctx.autocast():
        logits = model(x).float()
    return {
        f"{prefix}_loss": F.cross_entropy(logits, y).item(),
        f"{prefix}_acc": (logits.argmax(1) == y).float().mean().item(),
    }
