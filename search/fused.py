"""A fused training step for MLPs: forward and backward written out, without autograd.

For a 100k-parameter MLP the matrix products are a small part of an eager PyTorch step; the
rest is per-operation overhead (autograd's graph, temporaries, one optimizer pass per tensor).
Here a step is about fifteen operations into preallocated buffers, and the gradients land
directly in the flat buffer of ``FlatOptimizer``. ``tests/test_fused.py`` checks every
activation and loss against autograd. Activations without a hand-written derivative (gelu)
use the autograd step instead; ``supports`` says which.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from search.optim import FlatOptimizer

FUSED_ACTIVATIONS = ("relu", "sigmoid", "tanh", "leaky_relu")
LEAKY_SLOPE = 0.01  # nn.LeakyReLU's default


def supports(activation: str) -> bool:
    return activation in FUSED_ACTIVATIONS


class FusedMLPStep:
    """``step(x, y)`` trains on one batch and returns its loss (a 0-dim tensor on the device)."""

    def __init__(
        self,
        model: nn.Sequential,
        opt: FlatOptimizer,
        activation: str,
        loss: str,
        l1: float,
        dropout: float,
        batch_size: int,
    ) -> None:
        self.linears = [m for m in model if isinstance(m, nn.Linear)]
        self.opt, self.activation, self.loss, self.l1, self.dropout = (
            opt,
            activation,
            loss,
            l1,
            dropout,
        )
        grads, offset = [], 0
        for p in model.parameters():  # the order FlatOptimizer laid them out in
            grads.append(opt.grad[offset : offset + p.numel()].view_as(p))
            offset += p.numel()
        self.grad_w, self.grad_b = grads[0::2], grads[1::2]
        dev = opt.flat.device
        widths = [lin.out_features for lin in self.linears]
        self.acts = [torch.empty(batch_size, w, device=dev) for w in widths]
        self.dropped = [torch.empty(batch_size, w, device=dev) for w in widths[:-1]]
        self.masks = [torch.empty(batch_size, w, device=dev) for w in widths[:-1]]
        self.back = [torch.empty(batch_size, w, device=dev) for w in widths[:-1]]
        self.minus_ones = torch.full((batch_size, 1), -1.0, device=dev)
        self.model = model

    def _activate(self, h: torch.Tensor) -> None:
        if self.activation == "relu":
            h.clamp_(min=0)
        elif self.activation == "sigmoid":
            h.sigmoid_()
        elif self.activation == "tanh":
            h.tanh_()
        else:
            F.leaky_relu_(h, LEAKY_SLOPE)

    def _activation_backward(self, g: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Gradient through the activation, from its output (all four are invertible enough)."""
        if self.activation == "relu":
            return torch.ops.aten.threshold_backward(g, out, 0)
        if self.activation == "leaky_relu":
            return torch.ops.aten.leaky_relu_backward(g, out, LEAKY_SLOPE, True)
        if self.activation == "sigmoid":
            return g.mul_(out).mul_(1 - out)
        return g.mul_(1 - out * out)

    def _loss_and_grad(
        self, z: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(z)
        logp = torch.log_softmax(z, dim=1)
        if self.loss in ("nll", "cross_entropy"):
            loss = F.nll_loss(logp, y)
            dz = logp.exp_().scatter_add_(1, y.unsqueeze(1), self.minus_ones[:n])
            return loss, dz.div_(n)
        target = F.one_hot(y, z.shape[1]).to(z.dtype)
        if self.loss == "mse":
            p = logp.exp()
            diff = p - target
            loss = diff.pow(2).mean()
            u = diff.mul_(2.0 / diff.numel())
            return loss, p.mul_(u - (p * u).sum(dim=1, keepdim=True))
        diff = logp - target  # mse_logprob: the reference's MSE on log-probabilities
        loss = diff.pow(2).mean()
        u = diff.mul_(2.0 / diff.numel())
        return loss, u.sub_(logp.exp_().mul_(u.sum(dim=1, keepdim=True)))

    @torch.no_grad()
    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        n, last = len(x), len(self.linears) - 1
        inputs = [x]
        for i, lin in enumerate(self.linears):
            h = self.acts[i][:n]
            torch.addmm(lin.bias, inputs[-1], lin.weight.t(), out=h)
            if i == last:
                break
            self._activate(h)
            if self.dropout and self.model.training:
                mask = self.masks[i][:n].bernoulli_(1 - self.dropout).div_(1 - self.dropout)
                h = torch.mul(h, mask, out=self.dropped[i][:n])
            inputs.append(h)
        loss, g = self._loss_and_grad(self.acts[last][:n], y)
        for i in range(last, -1, -1):
            torch.mm(g.t(), inputs[i], out=self.grad_w[i])
            torch.sum(g, dim=0, out=self.grad_b[i])
            if i == 0:
                break
            back = torch.mm(g, self.linears[i].weight, out=self.back[i - 1][:n])
            if self.dropout:
                back.mul_(self.masks[i - 1][:n])
            g = self._activation_backward(back, self.acts[i - 1][:n])
        if self.l1:
            for lin, gw in zip(self.linears, self.grad_w, strict=True):
                gw.add_(lin.weight.sign(), alpha=self.l1)
                loss = loss + self.l1 * lin.weight.abs().sum()
        self.opt.apply()
        return loss
