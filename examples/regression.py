"""Example task: tabular regression, an MLP minimising RMSE on scikit-learn's diabetes data.

Search its space (``regression.toml`` beside this file) for the lowest validation RMSE::

    python -m search.run --task examples/regression.py

442 patients, 10 features, and a measure of disease progression a year later to predict (the
data ships with scikit-learn: no download). A fifth is the test set, split with a fixed seed; a
fifth of the rest is the validation set, split with the study's seed. Features and target are
standardised with the training rows' statistics; RMSE is in the target's own units.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn

from search.task import Context, DataContext


def load_data(ctx: DataContext) -> dict[str, Any]:
    """Standardised train and validation splits (final step: train plus validation, and test),
    and ``y_scale``, the target's standard deviation, to give RMSE in the target's units."""
    x, y = load_diabetes(return_X_y=True, scaled=False)
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=0.2, random_state=0)
    if ctx.final:
        x_train, y_train, held_out = x_rest, y_rest, {"test": (x_test, y_test)}
    else:
        x_train, x_val, y_train, y_val = train_test_split(
            x_rest, y_rest, test_size=0.2, random_state=ctx.seed
        )
        held_out = {"val": (x_val, y_val)}
    x_train, y_train = x_train[: ctx.train_limit], y_train[: ctx.train_limit]
    scaler = StandardScaler().fit(x_train)
    y_mean, y_scale = y_train.mean(), y_train.std()

    def tensors(xs: Any, ys: Any) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = scaler.transform(xs), (ys - y_mean) / y_scale
        return (
            torch.tensor(xs, dtype=torch.float32, device=ctx.device),
            torch.tensor(ys, dtype=torch.float32, device=ctx.device),
        )

    splits = {name: tensors(*split) for name, split in held_out.items()}
    return {"train": tensors(x_train, y_train), **splits, "y_scale": float(y_scale)}


def train(params: dict[str, Any], ctx: Context) -> dict[str, float]:
    hidden = params["hidden"]
    model = nn.Sequential(
        nn.Linear(10, hidden),
        nn.ReLU(),
        nn.Dropout(params["dropout"]),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, 1),
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
            metrics["val_rmse"] = rmse(model, *ctx.data["val"], ctx)
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
        return {"test_rmse": rmse(model, *ctx.data["test"], ctx)}
    return {"val_rmse": rmse(model, *ctx.data["val"], ctx)}


def train_epoch(
    model: nn.Module, optimizer: torch.optim.Optimizer, ctx: Context, batch_size: int
) -> float:
    """One pass over the training set in a fresh order; the mean squared error of the
    standardised target."""
    model.train()
    x, y = ctx.data["train"]
    total = torch.zeros((), device=ctx.device)
    for xb, yb in ctx.batches(x, y, batch_size=batch_size):
        with ctx.autocast():
            loss = F.mse_loss(model(xb).squeeze(1).float(), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.detach() * len(yb)
    return total.item() / len(y)


@torch.no_grad()
def rmse(model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: Context) -> float:
    """Root mean squared error in the target's units."""
    model.eval()
    with ctx.autocast():
        pred = model(x).squeeze(1).float()
    return F.mse_loss(pred, y).sqrt().item() * ctx.data["y_scale"]
