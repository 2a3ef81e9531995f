"""A task that resumes exactly: a tiny classifier on synthetic data, for ``search.check``.

The other tasks in this folder reuse its data and model, and each gets one thing wrong in its
own ``train``.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

from search.task import Context, DataContext

EXAMPLES = 300  # at most; each check trains on this in milliseconds


def load_data(ctx: DataContext) -> dict[str, torch.Tensor]:
    n = min(ctx.train_limit or EXAMPLES, EXAMPLES)
    g = torch.Generator().manual_seed(ctx.seed)
    x = torch.randn(n + 100, 8, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    return {"x": x[:n], "y": y[:n], "val_x": x[n:], "val_y": y[n:]}


def make_model(params: dict[str, Any]) -> nn.Module:
    hidden = int(params["hidden"])
    return nn.Sequential(nn.Linear(8, hidden), nn.ReLU(), nn.Dropout(0.2), nn.Linear(hidden, 2))


class SGD:
    """SGD with momentum, torch.optim.SGD's rule written out: the first step of a
    ``torch.optim`` optimizer imports ``torch._dynamo`` (about 2 s of every process that runs
    this task), which a tiny test task has no need of. Its state is the momentum buffers."""

    def __init__(self, params: Any, lr: float, momentum: float) -> None:
        self.params, self.lr, self.momentum = list(params), lr, momentum
        self.buffers = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for p, buffer in zip(self.params, self.buffers, strict=True):
            buffer.mul_(self.momentum).add_(p.grad)
            p.add_(buffer, alpha=-self.lr)

    def state_dict(self) -> dict[str, Any]:
        return {"momentum_buffers": [b.clone() for b in self.buffers]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for buffer, saved in zip(self.buffers, state["momentum_buffers"], strict=True):
            buffer.copy_(saved)


def make_optimizer(model: nn.Module, params: dict[str, Any]) -> SGD:
    return SGD(model.parameters(), lr=params["lr"], momentum=params["momentum"])


def one_epoch(model: nn.Module, opt: SGD, batches: Any) -> float:
    """Train on ``batches`` (dropout draws from torch's global RNG); the mean loss."""
    model.train()
    total, count = 0.0, 0
    for xb, yb in batches:
        loss = nn.functional.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        total, count = total + loss.item() * len(xb), count + len(xb)
    return total / count


@torch.no_grad()
def evaluate(model: nn.Module, data: dict[str, torch.Tensor]) -> dict[str, float]:
    model.eval()
    logits = model(data["val_x"])
    return {
        "val_loss": nn.functional.cross_entropy(logits, data["val_y"]).item(),
        "val_acc": (logits.argmax(1) == data["val_y"]).float().mean().item(),
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
        batches = ctx.batches(ctx.data["x"], ctx.data["y"], batch_size=32)
        train_loss = one_epoch(model, opt, batches)
        seconds = time.perf_counter() - began  # differs run to run: the check leaves it out
        ctx.report(
            epoch, train_loss=train_loss, epoch_seconds=seconds, **evaluate(model, ctx.data)
        )
        ctx.checkpoint(
            {"epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict()}
        )
    return evaluate(model, ctx.data)
