"""Where a wide epoch's time goes, fp32 against bf16 products: products, casts, optimizer, rest.

    python benchmarks/profile_precision.py [--steps 430]

One epoch of 2x1024 ReLU (the fused step, AdamW, batch 128: 430 steps on 55,000 images) is
timed whole, and its parts alone, on the same shapes, for the same number of steps: the three
products a layer (forward, weight gradient, backward) with inputs already in their precision;
for bf16, the casts the step adds (the weights once a step, each product's inputs, the results
back to fp32); and the optimizer's update (the compiled AdamW over the flat buffer). What is
left of the epoch is the rest: the loss, the activations, gathering batches, Python. The bf16
epoch is also predicted from its parts (the fp32 epoch, its products swapped for bf16 ones,
plus the casts) and printed beside the measured one. Last line:
``profile: fp32 A s (products P%), bf16 B s (products Q%, casts C%)``.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch

from search.engine.config import ModelConfig, TrainConfig
from search.engine.data import load
from search.engine.datasets import DataConfig, default_data_dir
from search.engine.model import build_mlp
from search.engine.optim import FlatOptimizer
from search.engine.train import fit

BATCH, WIDTHS = 128, (784, 1024, 1024, 10)


def timed(run, steps: int) -> float:
    run()  # first calls, caches
    start = time.perf_counter()
    for _ in range(steps):
        run()
    return time.perf_counter() - start


def products(dtype: torch.dtype, steps: int) -> float:
    """Seconds of the step's products alone, inputs already in ``dtype``."""
    layers = list(zip(WIDTHS, WIDTHS[1:], strict=False))
    xs = [torch.randn(BATCH, n_in).to(dtype) for n_in, _ in layers]
    ws = [torch.randn(n_in, n_out).to(dtype) for n_in, n_out in layers]
    gs = [torch.randn(BATCH, n_out).to(dtype) for _, n_out in layers]

    def step() -> None:
        for i, (x, w, g) in enumerate(zip(xs, ws, gs, strict=True)):
            torch.mm(x, w)  # forward
            torch.mm(g.t(), x)  # weight gradient
            if i:
                torch.mm(g, w.t())  # backward, to the layer below

    return timed(step, steps)


def casts(steps: int) -> float:
    """Seconds of what bf16 adds: weights cast once a step, inputs cast, results back."""
    layers = list(zip(WIDTHS, WIDTHS[1:], strict=False))
    ws = [torch.randn(n_in, n_out) for n_in, n_out in layers]
    w_bf = [torch.empty_like(w, dtype=torch.bfloat16) for w in ws]
    grads = [torch.empty(n_out, n_in) for n_in, n_out in layers]
    acts = [torch.randn(BATCH, n) for n in WIDTHS]

    def step() -> None:
        for w, wb, g in zip(ws, w_bf, grads, strict=True):
            wb.copy_(w)
            g.copy_(torch.empty(g.shape, dtype=torch.bfloat16))  # a weight gradient, back
        for a in acts:
            a.to(torch.bfloat16)  # each product's input, and each gradient
            a.to(torch.bfloat16).float()

    return timed(step, steps)


def optimizer(steps: int) -> float:
    model = build_mlp(ModelConfig(hidden=WIDTHS[1:-1]))
    opt = FlatOptimizer(list(model.parameters()), "adamw", 1e-3)
    return timed(opt.apply, steps)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=430)
    p.add_argument("--data-dir", default=default_data_dir())
    args = p.parse_args()
    data = load(DataConfig(data_dir=args.data_dir))
    model = ModelConfig(hidden=WIDTHS[1:-1])
    cfg = TrainConfig(epochs=1, batch_size=BATCH, optimizer="adamw", lr=1e-3)
    opt_s = optimizer(args.steps)
    epoch, mm = {}, {}
    for precision, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        fit(model, replace(cfg, precision=precision), data)  # first calls, compiled kernels
        epoch[precision] = fit(model, replace(cfg, precision=precision), data).history[0].seconds
        mm[precision] = products(dtype, args.steps)
    cast_s = casts(args.steps)
    for precision, extra in (("fp32", 0.0), ("bf16", cast_s)):
        rest = epoch[precision] - mm[precision] - extra - opt_s
        print(
            f"{precision}: epoch {epoch[precision]:.2f} s = products {mm[precision]:.2f} + "
            f"casts {extra:.2f} + optimizer {opt_s:.2f} + rest {rest:.2f}"
        )
    predicted = epoch["fp32"] - mm["fp32"] + mm["bf16"] + cast_s
    print(f"bf16 predicted from its parts: {predicted:.2f} s; measured {epoch['bf16']:.2f} s")
    a, b = epoch["fp32"], epoch["bf16"]
    print(
        f"profile: fp32 {a:.2f} s (products {mm['fp32'] / a:.0%}), bf16 {b:.2f} s (products "
        f"{mm['bf16'] / b:.0%}, casts {cast_s / b:.0%})"
    )


if __name__ == "__main__":
    main()
