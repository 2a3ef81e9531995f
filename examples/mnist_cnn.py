"""Example task: a small convolutional network on MNIST, AdamW with a one-cycle schedule.

Search its space (``mnist_cnn.toml`` beside this file) for the best validation accuracy::

    python -m search.run --task examples/mnist_cnn.py

It reads the project's MNIST copy (``--data-dir``, else ``$SEARCH_DATA_DIR``) with
``search.task.load_mnist``: 55,000 training and 5,000 validation images (``--val-size``) split
with the study's seed, the 10,000 test images only in the final step. Two 5x5 convolutions
with max-pooling, a hidden layer, dropout; 8 epochs reach about 99% validation accuracy.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from search.task import Context, DataContext, load_mnist

Split = tuple[torch.Tensor, torch.Tensor]
EVAL_BATCH = 1000  # images per forward pass when evaluating: bounds the activations' memory


def load_data(ctx: DataContext) -> dict[str, Split]:
    """Images (N x 1 x 28 x 28, normalised) and labels on ``ctx.device``: train and
    validation; in the final step, train (training plus validation) and test."""
    # The study's --dataset (mnist, fashion-mnist or kmnist) and --val-size; load_mnist also
    # honours ctx.train_limit, ctx.final (no validation split) and ctx.seed.
    mnist = load_mnist(ctx)

    def images(rows: torch.Tensor) -> torch.Tensor:
        return rows.reshape(-1, 1, 28, 28)

    splits = {"train": (images(mnist.train_x), mnist.train_y)}
    if ctx.final:
        splits["test"] = (images(mnist.test_x), mnist.test_y)
    else:
        splits["val"] = (images(mnist.val_x), mnist.val_y)
    return splits


def build(params: dict[str, Any]) -> nn.Module:
    """28x28 -> conv, pool -> 14x14 -> conv, pool -> 7x7 -> hidden -> 10 classes."""
    c1 = params["channels"]
    c2 = 2 * c1  # the second convolution doubles the first's channels
    return nn.Sequential(
        nn.Conv2d(1, c1, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(c2 * 7 * 7, params["hidden"]),
        nn.ReLU(),
        nn.Dropout(params["dropout"]),
        nn.Linear(params["hidden"], 10),
    )


def train(params: dict[str, Any], ctx: Context) -> dict[str, float]:
    model = build(params).to(ctx.device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=params["lr"], weight_decay=params["weight_decay"]
    )
    steps_per_epoch = math.ceil(len(ctx.data["train"][1]) / params["batch_size"])
    scheduler = torch.optim.lr_scheduler.OneCycleLR(  # stepped once per batch
        optimizer, max_lr=params["lr"], total_steps=ctx.epochs * steps_per_epoch
    )

    state = ctx.restore()  # None, or the last checkpoint of this point's interrupted run
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
    start = 1 if state is None else state["epoch"] + 1

    for epoch in range(start, ctx.epochs + 1):
        metrics = {"train_loss": train_epoch(model, optimizer, scheduler, ctx, params)}
        if not ctx.final:  # the final step has no validation set, and never peeks at test
            metrics |= evaluate(model, *ctx.data["val"], ctx, prefix="val")
        ctx.report(epoch, **metrics)
        ctx.checkpoint(
            {
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),  # plain values from torch 2.4 on
            }
        )

    ctx.save_weights(model)  # the final step keeps the winner's; a search, the best trial's
    if ctx.final:
        return evaluate(model, *ctx.data["test"], ctx, prefix="test")
    return evaluate(model, *ctx.data["val"], ctx, prefix="val")


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    ctx: Context,
    params: dict[str, Any],
) -> float:
    """One pass over the training set in a fresh order; the mean training loss."""
    model.train()
    x, y = ctx.data["train"]
    total = torch.zeros((), device=ctx.device)
    for xb, yb in ctx.batches(x, y, batch_size=params["batch_size"]):
        with ctx.autocast():
            loss = F.cross_entropy(model(xb), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total += loss.detach() * len(yb)
    return total.item() / len(y)


@torch.no_grad()
def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: Context, prefix: str
) -> dict[str, float]:
    model.eval()
    loss_sum = torch.zeros((), device=ctx.device)
    correct = torch.zeros((), device=ctx.device)
    for xb, yb in ctx.batches(x, y, batch_size=EVAL_BATCH, shuffle=False):
        with ctx.autocast():
            logits = model(xb).float()
        loss_sum += F.cross_entropy(logits, yb, reduction="sum")
        correct += (logits.argmax(1) == yb).sum()
    return {f"{prefix}_loss": loss_sum.item() / len(y), f"{prefix}_acc": correct.item() / len(y)}
