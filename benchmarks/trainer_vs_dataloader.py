"""Benchmark: this project's trainer against the classic per-sample DataLoader loop.

    python benchmarks/trainer_vs_dataloader.py [--epochs 2] [--data-dir DIR] [--device auto]

Both train the reference baseline (784-128-10, ReLU, NLL, Adadelta lr 1.0, batch 64, seed 1) on
the same 55,000 training images, from the same initial weights and in the same batch order, so
their accuracies differ only by floating-point rounding. The classic loop is the PyTorch MNIST
example's: ToTensor and Normalize applied per sample by a DataLoader. Seconds per epoch count
training only; test accuracy is measured after the last epoch. A wide row times one epoch of
2x1024 GELU (batch 128, AdamW) in fp32 and at ``--precision auto`` (bf16 products where the CPU
has AVX512_BF16 or AMX). The last line is the headline.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch
import torch.nn.functional as F
import torchvision
from torchvision import transforms

from search.engine.config import ModelConfig, TrainConfig
from search.engine.data import load
from search.engine.datasets import DataConfig, default_data_dir
from search.engine.device import resolve_device
from search.engine.model import build_mlp
from search.engine.precision import resolve
from search.engine.train import evaluate, fit


class SeededOrder(torch.utils.data.Sampler):
    """The trainer's batch order: one seeded generator, a fresh permutation every epoch."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.generator = n, torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        return iter(torch.randperm(self.n, generator=self.generator).tolist())


def classic(data_dir: str, train_idx: torch.Tensor, epochs: int, device: torch.device):
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    train = torchvision.datasets.MNIST(data_dir, train=True, download=False, transform=tf)
    test = torchvision.datasets.MNIST(data_dir, train=False, download=False, transform=tf)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(train, train_idx.tolist()),
        batch_size=64,
        sampler=SeededOrder(len(train_idx), seed=1),
    )
    torch.manual_seed(1)
    model = build_mlp(ModelConfig()).to(device)
    opt = torch.optim.Adadelta(model.parameters(), lr=1.0)
    seconds = 0.0
    for _ in range(epochs):
        model.train()
        t0 = time.perf_counter()
        for x, y in loader:
            x, y = x.to(device).flatten(1), y.to(device)
            opt.zero_grad()
            F.nll_loss(F.log_softmax(model(x), dim=1), y).backward()
            opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds += time.perf_counter() - t0
    correct = 0
    model.eval()
    with torch.no_grad():
        for x, y in torch.utils.data.DataLoader(test, batch_size=1000):
            correct += (model(x.to(device).flatten(1)).argmax(1) == y.to(device)).sum().item()
    return seconds / epochs, correct / len(test)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--data-dir", default=default_data_dir())
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    device = resolve_device(args.device)
    print(
        f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{args.epochs} epochs of the baseline"
    )

    splits = load(DataConfig(data_dir=args.data_dir), device)
    result = fit(ModelConfig(), TrainConfig(epochs=args.epochs), splits)
    ours_s = sum(r.seconds for r in result.history) / args.epochs
    _, ours_acc = evaluate(result.model, splits.test_x, splits.test_y, "nll")
    print(f"search:  {ours_s:.3f} s/epoch, test accuracy {ours_acc:.2%}")

    wide = ModelConfig(hidden=(1024, 1024), activation="gelu")
    cfg = TrainConfig(epochs=1, batch_size=128, optimizer="adamw", lr=1e-3)
    chosen, why = resolve("auto", device)
    seconds = {p: fit(wide, replace(cfg, precision=p), splits).history[0].seconds
               for p in dict.fromkeys(("fp32", chosen))}  # fmt: skip
    print(
        f"wide (2x1024 GELU, batch 128, one epoch): fp32 {seconds['fp32']:.2f} s, "
        f"auto ({why}) {seconds[chosen]:.2f} s: {seconds['fp32'] / seconds[chosen]:.2f}x"
    )

    # The same 55,000 training images as the split above.
    perm = torch.randperm(60_000, generator=torch.Generator().manual_seed(1))
    classic_s, classic_acc = classic(args.data_dir, perm[5000:].sort().values, args.epochs, device)
    print(f"classic: {classic_s:.3f} s/epoch, test accuracy {classic_acc:.2%}")
    print(
        f"speedup: {classic_s / ours_s:.1f}x (classic {classic_s:.2f} s/epoch, "
        f"search {ours_s:.3f} s/epoch, accuracy classic {classic_acc:.2%}, "
        f"search {ours_acc:.2%})"
    )


if __name__ == "__main__":
    main()
