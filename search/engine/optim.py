"""Fused optimizers over one flat parameter buffer: the update of a whole MLP in one pass.

``torch.optim`` updates each parameter tensor separately and allocates temporaries every step;
for a 100k-parameter MLP that per-operation overhead costs more than the matrix products
(see benchmarks/NOTES.md). Here every parameter is a view into one flat tensor and gradients
land in one preallocated buffer. On the CPU each rule is one compiled loop (search.engine.kernels);
on other devices it is a handful of in-place tensor operations with no host synchronisation
(the step count lives on the device), so that a CUDA graph can capture it.

Weight matrices are stored transposed (column-major): ``x @ W.t()`` then reads contiguous
memory, and the weight gradient ``g.t() @ x`` is written by the faster of the two BLAS
layouts (about 2x on the CPU here). The arithmetic is exactly ``torch.optim``'s (Adadelta, SGD
with momentum, plain or Nesterov's, Adam, AdamW with their default betas and epsilons);
``tests/test_train.py`` checks that they agree.

A learning-rate schedule comes as the rate of every step (search.engine.schedules): the
compiled loop reads the step's entry, and the tensor-operation rules pick it on the device by
the device-side step count, so a captured graph replays the schedule too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from search.engine.config import OPTIMIZERS

BACKENDS = ("compiled", "torch")
SGD_MOMENTUM = 0.9
ADADELTA_RHO, ADADELTA_EPS = 0.9, 1e-6
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8


def default_backend(device: torch.device) -> str:
    return "compiled" if device.type == "cpu" else "torch"


class FlatOptimizer:
    """``step()`` after ``loss.backward()``; ``apply()`` when the gradient buffer is filled."""

    def __init__(
        self,
        params: list[torch.Tensor],
        kind: str,
        lr: float,
        weight_decay: float = 0.0,
        backend: str | None = None,
        rates: Sequence[float] | None = None,
    ) -> None:
        """``rates``: the rate of each step (a schedule); None keeps ``lr`` throughout."""
        if kind not in OPTIMIZERS:
            raise ValueError(f"optimizer: expected one of {', '.join(OPTIMIZERS)}, got {kind!r}")
        self.kind, self.lr, self.weight_decay = kind, lr, weight_decay
        self.params = params
        device = params[0].device
        self.backend = backend or default_backend(device)
        if self.backend not in BACKENDS or (self.backend == "compiled" and device.type != "cpu"):
            raise ValueError(
                f"backend: expected 'torch', or 'compiled' on the CPU; got {self.backend!r} "
                f"for {device}"
            )
        with torch.no_grad():
            self.flat = torch.cat([_storage_order(p.detach()) for p in params])
        self.grad = torch.zeros_like(self.flat)
        self.grads = []  # views into self.grad, shaped (and strided) like the parameters
        offset = 0
        for p in params:
            p.data = _view_like(self.flat, offset, p)
            self.grads.append(_view_like(self.grad, offset, p))
            offset += p.numel()
        self.state = [torch.zeros_like(self.flat) for _ in range(2)]
        # Scratch for the tensor-operation rules; a compiled loop needs none.
        n_tmp = 2 if self.backend == "torch" else 0
        self.tmp = [torch.empty_like(self.flat) for _ in range(n_tmp)]
        self.steps = 0
        self.step_t = torch.zeros((), device=device)  # the step count, for a captured graph
        self.rates = None if rates is None else np.asarray(rates, dtype=np.float32)
        if self.rates is not None and self.backend == "torch":
            self.rates_t = torch.as_tensor(self.rates, device=device)
            self.rate_index = torch.zeros(1, dtype=torch.int64, device=device)
            self.lr_t = torch.empty(1, device=device)  # this step's rate, on the device
        if self.backend == "compiled":
            from search.engine import kernels  # compiles on first use; only the CPU path needs it

            self._kernels = kernels
            f32 = kernels.F32  # the scalars once: each conversion costs a microsecond a step
            self._lr32, self._wd32 = f32(lr), f32(weight_decay)
            self._rho32, self._eps32 = f32(ADADELTA_RHO), f32(ADADELTA_EPS)
            self._momentum32 = f32(SGD_MOMENTUM)
            self._arrays = [t.numpy() for t in (self.flat, self.grad, *self.state)]
            # Load (or compile) the kernel now, on empty arrays, not inside the first epoch.
            self._compiled([a[:0] for a in self._arrays])

    def snapshot(self) -> tuple[torch.Tensor, list[torch.Tensor], int]:
        """Copies of the parameters and state, and the step count (for a checkpoint)."""
        return self.flat.clone(), [s.clone() for s in self.state], self.steps

    @torch.no_grad()
    def restore(self, params: torch.Tensor, state: list[torch.Tensor], steps: int) -> None:
        """Go on from a snapshot: the buffers in place (the model's parameters view them), the
        step count, and with it the schedule's position."""
        self.flat.copy_(params)
        for mine, saved in zip(self.state, state, strict=True):
            mine.copy_(saved)
        self.steps = steps
        self.step_t.fill_(steps)
        if self.rates is not None and self.backend == "torch":
            self.rate_index.fill_(min(steps, len(self.rates) - 1))

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """Gather the parameters' ``.grad`` (from autograd) into the flat buffer and update."""
        for p, view in zip(self.params, self.grads, strict=True):
            if p.grad is None:
                view.zero_()
            else:
                view.copy_(p.grad)
        self.apply()

    @torch.no_grad()
    def apply(self) -> None:
        """Update from the flat gradient buffer as it stands (a fused step writes it directly)."""
        self.steps += 1
        if self.backend == "compiled":
            self._compiled(self._arrays)
        else:
            self.step_t += 1
            if self.rates is not None:
                torch.index_select(self.rates_t, 0, self.rate_index, out=self.lr_t)
                self.rate_index.add_(1).clamp_(max=len(self.rates) - 1)
            getattr(self, f"_{self.kind}")(self.flat, self.grad, *self.state, *self.tmp)

    @property
    def _rate(self) -> float | torch.Tensor:
        """This step's rate for the tensor-operation rules: a number, or a device tensor."""
        return self.lr if self.rates is None else self.lr_t

    def _descend(self, p: torch.Tensor, direction: torch.Tensor) -> None:
        """p -= rate * direction (as torch.optim's ``add_(..., alpha=-lr)`` rounds it)."""
        if self.rates is None:
            p.add_(direction, alpha=-self.lr)
        else:
            p.addcmul_(direction, self.lr_t, value=-1)

    def _compiled(self, arrays: list) -> None:
        k, f32, lr, wd = self._kernels, self._kernels.F32, self._lr32, self._wd32
        if self.rates is not None:
            lr = self.rates[min(self.steps, len(self.rates)) - 1]
        p, g, s0, s1 = arrays
        if self.kind == "adadelta":
            k.adadelta(p, g, s0, s1, lr, self._rho32, self._eps32, wd)
        elif self.kind in ("sgd", "nesterov"):
            k.sgd(p, g, s0, lr, self._momentum32, wd, self.kind == "nesterov")
        else:
            beta1, beta2 = ADAM_BETAS
            decoupled = self.kind == "adamw"
            k.adam(
                *(p, g, s0, s1, lr, f32(beta1), f32(beta2), f32(ADAM_EPS)),
                f32(0.0 if decoupled else self.weight_decay),
                f32(1 - float(lr) * self.weight_decay if decoupled else 1.0),
                f32(1 - beta1 ** max(self.steps, 1)),
                f32(math.sqrt(1 - beta2 ** max(self.steps, 1))),
            )

    def _adadelta(self, p, g, square_avg, acc_delta, std, delta) -> None:
        if self.weight_decay:
            g.add_(p, alpha=self.weight_decay)
        square_avg.mul_(ADADELTA_RHO).addcmul_(g, g, value=1 - ADADELTA_RHO)
        torch.add(square_avg, ADADELTA_EPS, out=std).sqrt_()
        torch.add(acc_delta, ADADELTA_EPS, out=delta).sqrt_().div_(std).mul_(g)
        acc_delta.mul_(ADADELTA_RHO).addcmul_(delta, delta, value=1 - ADADELTA_RHO)
        self._descend(p, delta)

    def _sgd(self, p, g, buf, _unused, _tmp1, _tmp2) -> None:
        if self.weight_decay:
            g.add_(p, alpha=self.weight_decay)
        buf.mul_(SGD_MOMENTUM).add_(g)  # first step: 0 * momentum + g, as torch.optim's clone
        self._descend(p, buf)

    def _nesterov(self, p, g, buf, _unused, step, _tmp2) -> None:
        if self.weight_decay:
            g.add_(p, alpha=self.weight_decay)
        buf.mul_(SGD_MOMENTUM).add_(g)
        torch.add(g, buf, alpha=SGD_MOMENTUM, out=step)  # torch.optim's g + momentum * buf
        self._descend(p, step)

    def _adam(self, p, g, exp_avg, exp_avg_sq, denom, tmp, decoupled: bool = False) -> None:
        beta1, beta2 = ADAM_BETAS
        if self.weight_decay and decoupled:
            p.mul_(1 - self._rate * self.weight_decay)
        elif self.weight_decay:
            g.add_(p, alpha=self.weight_decay)
        exp_avg.lerp_(g, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        # Bias corrections from the device-side step count: no host value baked into a graph.
        bias1 = 1 - torch.pow(beta1, self.step_t)
        bias2_sqrt = torch.sqrt(1 - torch.pow(beta2, self.step_t))
        torch.sqrt(exp_avg_sq, out=denom).div_(bias2_sqrt).add_(ADAM_EPS)
        torch.div(exp_avg, denom, out=tmp).mul_(self._rate / bias1)
        p.sub_(tmp)

    def _adamw(self, p, g, exp_avg, exp_avg_sq, denom, tmp) -> None:
        self._adam(p, g, exp_avg, exp_avg_sq, denom, tmp, decoupled=True)


def _storage_order(p: torch.Tensor) -> torch.Tensor:
    """A parameter's values in the order the flat buffer keeps them (matrices transposed)."""
    return (p.t() if p.dim() == 2 else p).reshape(-1)


def _view_like(flat: torch.Tensor, offset: int, p: torch.Tensor) -> torch.Tensor:
    chunk = flat[offset : offset + p.numel()]
    if p.dim() == 2:
        return chunk.view(p.shape[1], p.shape[0]).t()
    return chunk.view_as(p)
