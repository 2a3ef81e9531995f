"""A fused training step for MLPs: forward and backward written out, without autograd.

For a 100k-parameter MLP the matrix products are a small part of an eager PyTorch step; the
rest is per-operation overhead (autograd's graph, temporaries, one optimizer pass per tensor).
Here a step is the matrix products plus a few operations into preallocated buffers, and the
gradients land directly in the flat buffer of ``FlatOptimizer``. On the CPU the loss with its
gradient and each activation's backward are compiled loops (search.engine.kernels); elsewhere
they are tensor operations with no host synchronisation, so that a CUDA graph can capture the
step (search.engine.graphs). ``tests/test_fused.py`` checks every activation and loss against
autograd, both ways. Activations without a hand-written derivative (gelu) use the autograd
step instead; ``supports`` says which.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from search.engine.optim import FlatOptimizer
from search.engine.products import products_for

FUSED_ACTIVATIONS = ("relu", "sigmoid", "tanh", "leaky_relu")
LEAKY_SLOPE = 0.01  # nn.LeakyReLU's default


def supports(activation: str) -> bool:
    return activation in FUSED_ACTIVATIONS


class _Views:
    """Every buffer view a step of ``n`` samples touches, made once: on a small CPU, slicing
    and transposing cost microseconds each, as much as the arithmetic they slice."""

    def __init__(self, step: FusedMLPStep, n: int) -> None:
        self.acts = [a[:n] for a in step.acts]
        self.acts_t = [a.t() for a in self.acts]
        self.dropped = [d[:n] for d in step.dropped]
        self.masks = [m[:n] for m in step.masks]
        self.back = [b[:n] for b in step.back]
        self.back_t = [b.t() for b in self.back]
        self.minus_ones = step.minus_ones[:n]
        self.in_mask, self.in_dropped = step.in_mask[:n], step.in_dropped[:n]
        if step.native:
            self.np_acts = [a.numpy() for a in self.acts]
            self.np_back = [b.numpy() for b in self.back]


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
        label_smoothing: float = 0.0,
        input_dropout: float = 0.0,
        precision: str = "fp32",
    ) -> None:
        self.linears = [m for m in model if isinstance(m, nn.Linear)]
        self.opt, self.activation, self.loss, self.l1, self.dropout = (
            opt,
            activation,
            loss,
            l1,
            dropout,
        )
        # Views into the flat buffers, in the order FlatOptimizer laid them out; the weights
        # are stored transposed, so weight.t() is the contiguous matrix a product reads.
        self.grad_w, self.grad_b = opt.grads[0::2], opt.grads[1::2]
        self.weights = [lin.weight for lin in self.linears]
        self.weights_t = [lin.weight.t() for lin in self.linears]
        self.biases = [lin.bias for lin in self.linears]
        self.products = products_for(precision, self.weights_t, self.grad_w)
        self.last = len(self.linears) - 1
        dev = opt.flat.device
        widths = [lin.out_features for lin in self.linears]
        self.acts = [torch.empty(batch_size, w, device=dev) for w in widths]
        self.dropped = [torch.empty(batch_size, w, device=dev) for w in widths[:-1]]
        self.masks = [torch.empty(batch_size, w, device=dev) for w in widths[:-1]]
        self.back = [torch.empty(batch_size, w, device=dev) for w in widths[:-1]]
        self.input_dropout = input_dropout
        n_in = self.linears[0].in_features if input_dropout else 0
        self.in_mask = torch.empty(batch_size, n_in, device=dev)
        self.in_dropped = torch.empty(batch_size, n_in, device=dev)
        # The label's share of the smoothed target, negated (scattered onto the softmax).
        self.smoothing = label_smoothing
        self.minus_ones = torch.full((batch_size, 1), label_smoothing - 1.0, device=dev)
        self.model = model
        # On the CPU, the loss and each activation's backward (with its bias gradient) run as
        # compiled loops (search.engine.kernels) on numpy views of these same buffers.
        self.native = opt.backend == "compiled"
        self.native_loss = self.native and loss in ("nll", "cross_entropy")
        if self.native:
            from search.engine import kernels

            self.kernels = kernels
            self.loss_t = torch.zeros(1)
            self.loss_view, self.np_loss = self.loss_t[0], self.loss_t.numpy()
            self.np_grad_b = [b.numpy() for b in self.grad_b]
            self.act_code = ("relu", "leaky_relu", "sigmoid", "tanh").index(activation)
            self.slope = kernels.F32(LEAKY_SLOPE)
            self.smoothing32 = kernels.F32(label_smoothing)
        self.views: dict[int, _Views] = {}

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
        self, z: torch.Tensor, y: torch.Tensor, v: _Views
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(z)
        logp = torch.log_softmax(z, dim=1)
        if self.loss in ("nll", "cross_entropy"):
            loss = F.nll_loss(logp, y)
            if self.smoothing:  # torch's label smoothing: (1 - e) nll + e * mean(-log p)
                loss = loss * (1 - self.smoothing) - logp.mean() * self.smoothing
            dz = logp.exp_().scatter_add_(1, y.unsqueeze(1), v.minus_ones)
            if self.smoothing:
                dz.sub_(self.smoothing / z.shape[1])
            return loss, dz.div_(n)
        # Not F.one_hot: it checks the labels' range on the host, which a CUDA graph forbids.
        target = torch.zeros_like(z).scatter_(1, y.unsqueeze(1), 1.0)
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
        n, last = len(x), self.last
        v = self.views.get(n) or self.views.setdefault(n, _Views(self, n))
        dropping = self.dropout and self.model.training
        inputs = v.dropped if dropping else v.acts  # what layers 1, 2, ... read
        if self.input_dropout and self.model.training:  # layer 0 reads (and learns from) x_d
            keep = 1 - self.input_dropout
            x = torch.mul(x, v.in_mask.bernoulli_(keep).div_(keep), out=v.in_dropped)
        h_in = x
        products = self.products
        products.begin()
        for i in range(last):
            h = v.acts[i]
            products.linear(i, h_in, self.biases[i], h)
            self._activate(h)
            if dropping:
                mask = v.masks[i].bernoulli_(1 - self.dropout).div_(1 - self.dropout)
                h = torch.mul(h, mask, out=v.dropped[i])
            h_in = h
        z = v.acts[last]
        products.linear(last, h_in, self.biases[last], z)
        if self.native_loss:  # dz overwrites z, which the forward pass is done with
            np_z = v.np_acts[last]
            self.kernels.nll_forward_backward(
                np_z, y.numpy(), np_z, self.np_grad_b[last], self.np_loss, self.smoothing32
            )
            loss, g, g_t = self.loss_view, z, v.acts_t[last]
        else:
            loss, g = self._loss_and_grad(z, y, v)
            g_t = g.t()
        for i in range(last, -1, -1):
            products.weight_grad(i, g_t, inputs[i - 1] if i else x, self.grad_w[i])
            if not (self.native_loss if i == last else self.native):  # else a kernel did it
                torch.sum(g, dim=0, out=self.grad_b[i])
            if i == 0:
                break
            back = products.backward(i, g, v.back[i - 1])
            if dropping:
                back.mul_(v.masks[i - 1])
            if self.native:  # in place, and the bias gradient of layer i - 1 with it
                self.kernels.activation_backward(
                    v.np_back[i - 1],
                    v.np_acts[i - 1],
                    self.np_grad_b[i - 1],
                    self.act_code,
                    self.slope,
                )
                g, g_t = back, v.back_t[i - 1]
            else:
                g = self._activation_backward(back, v.acts[i - 1])
                g_t = g.t()
        if self.l1:
            for w, gw in zip(self.weights, self.grad_w, strict=True):
                gw.add_(w.sign(), alpha=self.l1)
                loss = loss + self.l1 * w.abs().sum()
        self.opt.apply()
        return loss
