"""A plain argparse training script, tuned as it is: a small MLP on synthetic data.

Tuned as it is, from the repository's root (its space is ``train.toml`` beside it):

python -m search.run --task 'cmd:python examples/script_task/train.py --lr {lr} --units {units}'

On its own: ``python examples/script_task/train.py --lr 0.01``.

It knows the service only through environment variables (``search.tasks.command``), each
optional: ``SEARCH_SEED`` and ``SEARCH_EPOCHS`` are its defaults for ``--seed`` and
``--epochs``; each epoch's metrics go to ``$SEARCH_METRICS_FILE`` as a JSON line (else to stdout
as ``search-metric: {...}``); it stops before an epoch when ``$SEARCH_STOP_FILE`` exists, keeps a
checkpoint in ``$SEARCH_CHECKPOINT_DIR`` and resumes from it, reporting its kept epochs again
(the service skips those it has); with ``SEARCH_FINAL=1`` it trains on training plus validation
data and ends with its test metrics.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch
from torch import nn

FEATURES, CLASSES = 20, 4
TRAIN, VAL, TEST = 2000, 500, 500  # examples in each split


def options() -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=float, default=0.01, help="Adam's learning rate")
    parser.add_argument("--units", type=int, default=64, help="hidden units")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=int(env.get("SEARCH_EPOCHS", 10)))
    parser.add_argument("--seed", type=int, default=int(env.get("SEARCH_SEED", 0)))
    return parser.parse_args()


def make_data(seed: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Points labelled by a random two-layer teacher, with 10% of the labels flipped at random."""
    gen = torch.Generator().manual_seed(seed)
    w1 = torch.randn(FEATURES, 32, generator=gen) / FEATURES**0.5  # tanh in its curved range
    w2 = torch.randn(32, CLASSES, generator=gen)
    x = torch.randn(TRAIN + VAL + TEST, FEATURES, generator=gen)
    y = (torch.tanh(x @ w1) @ w2).argmax(1)
    noisy = torch.rand(len(y), generator=gen) < 0.1
    y[noisy] = torch.randint(0, CLASSES, (int(noisy.sum()),), generator=gen)
    cuts = {"train": (0, TRAIN), "val": (TRAIN, TRAIN + VAL), "test": (TRAIN + VAL, len(y))}
    return {k: (x[a:b], y[a:b]) for k, (a, b) in cuts.items()}


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    with torch.no_grad():
        out = model(x)
    return nn.functional.cross_entropy(out, y).item(), (out.argmax(1) == y).float().mean().item()


def emit(metrics: dict[str, float]) -> None:
    """One JSON object: to the service's metrics file when there is one, else to stdout."""
    line, path = json.dumps(metrics), os.environ.get("SEARCH_METRICS_FILE")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")
    else:
        print(f"search-metric: {line}", flush=True)


def train_epoch(model, optimizer, x, y, batch_size: int, order: torch.Generator) -> float:
    """One pass over the data in a fresh order; the mean training loss."""
    model.train()
    losses = []
    for idx in torch.randperm(len(x), generator=order).split(batch_size):
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    return sum(losses) / len(losses)


def main() -> None:
    args = options()
    final = os.environ.get("SEARCH_FINAL") == "1"
    data = make_data(args.seed)
    x, y = data["train"]
    if final:  # the final step: validation data is training data too
        x, y = torch.cat([x, data["val"][0]]), torch.cat([y, data["val"][1]])
    torch.manual_seed(args.seed)
    model = nn.Sequential(
        nn.Linear(FEATURES, args.units), nn.ReLU(), nn.Linear(args.units, CLASSES)
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    order = torch.Generator().manual_seed(args.seed)
    folder = os.environ.get("SEARCH_CHECKPOINT_DIR")
    saved = Path(folder) / "checkpoint.pt" if folder else None
    history: list[dict[str, float]] = []  # every epoch's metrics, kept with the checkpoint
    if saved is not None and saved.is_file():
        state = torch.load(saved, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        order.set_state(state["order"])
        history = state["history"]
        for metrics in history:  # again: the service may have stopped listening before some
            emit(metrics)
    stop_file = os.environ.get("SEARCH_STOP_FILE")
    for epoch in range(len(history) + 1, args.epochs + 1):
        if stop_file and os.path.exists(stop_file):
            return
        train_loss = train_epoch(model, optimizer, x, y, args.batch_size, order)
        val_loss, val_acc = evaluate(model, *data["val"])
        history.append(
            {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "val_acc": val_acc}
        )
        emit(history[-1])
        if saved is not None:  # written aside, then moved: a stop never leaves half a file
            part = saved.with_suffix(".part")
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict()}
            torch.save({**state, "order": order.get_state(), "history": history}, part)
            os.replace(part, saved)
    if final:
        test_loss, test_acc = evaluate(model, *data["test"])
        emit({"test_loss": test_loss, "test_acc": test_acc})


if __name__ == "__main__":
    main()
