"""Fused optimizers over one flat parameter buffer: the update of a whole MLP in a few kernels.

``torch.optim`` updates each parameter tensor separately and allocates temporaries every step;
for a 100k-parameter MLP that per-operation overhead costs more than the matrix products
(see benchmarks/NOTES.md). Here every parameter is a view into one flat tensor, gradients are
gathered into one preallocated buffer, and each rule runs as a handful of in-place operations.
The arithmetic is exactly ``torch.optim``'s (Adadelta, SGD with momentum, Adam, AdamW with their
default betas and epsilons); ``tests/test_train.py`` checks that they agree.
"""

from __future__ import annotations

import math

import torch

OPTIMIZERS = ("adadelta", "sgd", "adam", "adamw")
SGD_MOMENTUM = 0.9
ADADELTA_RHO, ADADELTA_EPS = 0.9, 1e-6
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8


class FlatOptimizer:
    """``step()`` after ``loss.backward()``; ``zero_grad()`` before the next backward."""

    def __init__(
        self, params: list[torch.Tensor], kind: str, lr: float, weight_decay: float = 0.0
    ) -> None:
        if kind not in OPTIMIZERS:
            raise ValueError(f"optimizer: expected one of {', '.join(OPTIMIZERS)}, got {kind!r}")
        self.kind, self.lr, self.weight_decay = kind, lr, weight_decay
        self.params = params
        with torch.no_grad():
            self.flat = torch.cat([p.detach().reshape(-1) for p in params])
        offset = 0
        for p in params:
            p.data = self.flat[offset : offset + p.numel()].view_as(p)
            offset += p.numel()
        self.grad = torch.zeros_like(self.flat)
        self.state = [torch.zeros_like(self.flat) for _ in range(2)]
        self.tmp = [torch.empty_like(self.flat) for _ in range(2)]
        self.steps = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """Gather the parameters' ``.grad`` (from autograd) into the flat buffer and update."""
        grads = [
            p.grad.reshape(-1) if p.grad is not None else torch.zeros_like(p).reshape(-1)
            for p in self.params
        ]
        torch.cat(grads, out=self.grad)
        self.apply()

    @torch.no_grad()
    def apply(self) -> None:
        """Update from the flat gradient buffer as it stands (a fused step writes it directly)."""
        self.steps += 1
        getattr(self, f"_{self.kind}")(self.flat, self.grad, *self.state, *self.tmp)

    def _adadelta(self, p, g, square_avg, acc_delta, std, delta) -> None:
        if self.weight_decay:
            g.add_(p, alpha=self.weight_decay)
        square_avg.mul_(ADADELTA_RHO).addcmul_(g, g, value=1 - ADADELTA_RHO)
        torch.add(square_avg, ADADELTA_EPS, out=std).sqrt_()
        torch.add(acc_delta, ADADELTA_EPS, out=delta).sqrt_().div_(std).mul_(g)
        acc_delta.mul_(ADADELTA_RHO).addcmul_(delta, delta, value=1 - ADADELTA_RHO)
        p.add_(delta, alpha=-self.lr)

    def _sgd(self, p, g, buf, _unused, _tmp1, _tmp2) -> None:
        if self.weight_decay:
            g.add_(p, alpha=self.weight_decay)
        buf.mul_(SGD_MOMENTUM).add_(g)  # first step: 0 * momentum + g, as torch.optim's clone
        p.add_(buf, alpha=-self.lr)

    def _adam(self, p, g, exp_avg, exp_avg_sq, denom, _tmp, decoupled: bool = False) -> None:
        beta1, beta2 = ADAM_BETAS
        if self.weight_decay and decoupled:
            p.mul_(1 - self.lr * self.weight_decay)
        elif self.weight_decay:
            g.add_(p, alpha=self.weight_decay)
        exp_avg.lerp_(g, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        bias1 = 1 - beta1**self.steps
        bias2_sqrt = math.sqrt(1 - beta2**self.steps)
        torch.sqrt(exp_avg_sq, out=denom).div_(bias2_sqrt).add_(ADAM_EPS)
        p.addcdiv_(exp_avg, denom, value=-self.lr / bias1)

    def _adamw(self, p, g, exp_avg, exp_avg_sq, denom, tmp) -> None:
        self._adam(p, g, exp_avg, exp_avg_sq, denom, tmp, decoupled=True)
