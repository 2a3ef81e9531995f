"""Benchmark: bf16 products against fp32, in speed and in what a model learns.

    python benchmarks/precision.py [--seeds 3] [--epochs 15] [--data-dir DIR]

Speed: one epoch of a wide MLP (2x1024, batch 128, AdamW; GELU on the autograd step, and ReLU
on the fused step) on the 55,000 training images, fp32 against bf16 products, each after an
untimed warm-up. Quality: the best configuration the 30-minute TPE search found in the
default space (1 layer of 868 GELU, SGD with Nesterov momentum at 0.124, cosine after a
1-epoch warm-up, dropout 0.21, input dropout 0.064, weight decay 5.9e-5, label smoothing
0.058, batch 128), trained ``--epochs`` epochs on every training image with ``--seeds`` seeds in
each precision, its test set read once at the end. On a CPU without fast bf16 (no AVX512_BF16
or AMX) the bf16 runs are emulated and slow: the headline says which CPU this was. Last line:
``bf16: X.Xx per wide epoch (fp32 A s, bf16 B s), test accuracy after 15 epochs fp32 P% bf16 Q%
(3 seeds)``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import torch

from search.engine.config import ModelConfig, TrainConfig
from search.engine.data import load
from search.engine.datasets import DataConfig, default_data_dir
from search.engine.precision import fast_bf16
from search.engine.schedules import Schedule
from search.engine.train import fit
from search.tasks.mlp.vocabulary import BASE_LR

WIDE = TrainConfig(epochs=1, batch_size=128, optimizer="adamw", lr=1e-3)
BEST_MODEL = ModelConfig(hidden=(868,), activation="gelu", dropout=0.21, input_dropout=0.064)
BEST_TRAIN = TrainConfig(
    optimizer="nesterov",
    lr=BASE_LR["nesterov"] * 2.48,  # the trial's lr_factor: 0.124 in all
    schedule=Schedule(kind="cosine", warmup_epochs=1.0),
    batch_size=128,
    weight_decay=5.9e-5,
    label_smoothing=0.058,
    loss="cross_entropy",
    every_epoch=False,  # the test set read once, after the last epoch
)


def wide_epoch(activation: str, precision: str, data) -> float:
    """Seconds of one training epoch (evaluation excluded), after an untimed warm-up."""
    model = ModelConfig(hidden=(1024, 1024), activation=activation)
    short = replace(data, train_x=data.train_x[:2048], train_y=data.train_y[:2048])
    fit(model, replace(WIDE, precision=precision), short)  # first calls, kernels compiled
    return fit(model, replace(WIDE, precision=precision), data).history[0].seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--data-dir", default=default_data_dir())
    args = p.parse_args()
    cpu = torch.device("cpu")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, fast bf16: "
          f"{fast_bf16(cpu)}")  # fmt: skip
    data = load(DataConfig(data_dir=args.data_dir))
    speed = {}
    for activation in ("relu", "gelu"):
        fp32, bf16 = wide_epoch(activation, "fp32", data), wide_epoch(activation, "bf16", data)
        speed[activation] = (fp32, bf16)
        print(f"wide epoch, {activation}: fp32 {fp32:.2f} s, bf16 {bf16:.2f} s: "
              f"{fp32 / bf16:.2f}x")  # fmt: skip
    everything = load(DataConfig(data_dir=args.data_dir, val_size=0))
    accuracy = {}
    for precision in ("fp32", "bf16"):
        accs = []
        for seed in range(1, args.seeds + 1):
            cfg = replace(BEST_TRAIN, epochs=args.epochs, seed=seed, precision=precision)
            start = time.perf_counter()
            result = fit(BEST_MODEL, cfg, everything)
            accs.append(result.history[-1].test_acc)
            print(f"best config, {precision}, seed {seed}: test {accs[-1]:.2%} "
                  f"({time.perf_counter() - start:.0f} s)")  # fmt: skip
        accuracy[precision] = statistics.fmean(accs)
    fp32, bf16 = speed["gelu"]
    print(
        f"bf16: {fp32 / bf16:.1f}x per wide epoch (fp32 {fp32:.2f} s, bf16 {bf16:.2f} s), test "
        f"accuracy after {args.epochs} epochs fp32 {accuracy['fp32']:.2%} bf16 "
        f"{accuracy['bf16']:.2%} ({args.seeds} seeds)"
    )


if __name__ == "__main__":
    main()
