"""The fused step's matrix products, in fp32 or with bf16 inputs.

A wide MLP's step is bound by its three products a layer: the forward ``x W^T + b``, the
weight gradient ``g^T x`` and the backward ``g W``. Where the device multiplies bf16 fast
(AVX512_BF16 or AMX on a CPU, a recent GPU), ``Bf16Products`` casts the products' inputs to
bf16, and only those: the master weights, the optimizer's state, the activations, the losses
and every reduction stay fp32, and each product's result is cast back to fp32 where the fused
step reads it. The weights are cast once a step into a bf16 copy kept in the same transposed
layout, so the forward and the backward product of a layer share one cast. ``Fp32Products``
is the fused step's arithmetic exactly as before; ``products_for`` picks one.
"""

from __future__ import annotations

import torch

BF16 = torch.bfloat16


class Fp32Products:
    """The products in fp32: ``torch.addmm`` and ``torch.mm`` into the step's buffers."""

    def __init__(self, weights_t: list[torch.Tensor]) -> None:
        self.weights_t = weights_t

    def begin(self) -> None:
        """Called once a step, before the first product (the weights are what they are)."""

    def linear(self, i: int, x: torch.Tensor, bias: torch.Tensor, out: torch.Tensor) -> None:
        torch.addmm(bias, x, self.weights_t[i], out=out)

    def weight_grad(self, i: int, g_t: torch.Tensor, x: torch.Tensor, out: torch.Tensor) -> None:
        torch.mm(g_t, x, out=out)

    def backward(self, i: int, g: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        return torch.mm(g, self.weights_t[i].t(), out=out)


class Bf16Products(Fp32Products):
    """The products with bf16 inputs; results back in the step's fp32 buffers."""

    def __init__(self, weights_t: list[torch.Tensor], grad_w: list[torch.Tensor]) -> None:
        super().__init__(weights_t)
        self.w_bf = [torch.empty_like(w, dtype=BF16) for w in weights_t]  # same layout
        self.gw_bf = [
            torch.empty_strided(g.shape, g.stride(), dtype=BF16, device=g.device) for g in grad_w
        ]
        self.inputs_bf: dict[int, torch.Tensor] = {}  # layer -> its input, cast (forward)

    def begin(self) -> None:
        for w, w_bf in zip(self.weights_t, self.w_bf, strict=True):
            w_bf.copy_(w)

    def linear(self, i: int, x: torch.Tensor, bias: torch.Tensor, out: torch.Tensor) -> None:
        x_bf = self.inputs_bf[i] = x.to(BF16)  # kept for this layer's weight gradient
        torch.add(torch.mm(x_bf, self.w_bf[i]), bias, out=out)

    def weight_grad(self, i: int, g_t: torch.Tensor, x: torch.Tensor, out: torch.Tensor) -> None:
        torch.mm(g_t.to(BF16), self.inputs_bf[i], out=self.gw_bf[i])
        out.copy_(self.gw_bf[i])

    def backward(self, i: int, g: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        return out.copy_(torch.mm(g.to(BF16), self.w_bf[i].t()))


def products_for(
    precision: str, weights_t: list[torch.Tensor], grad_w: list[torch.Tensor]
) -> Fp32Products:
    """The products of a fused step at ``precision`` (``fp32`` or ``bf16``)."""
    if precision == "bf16":
        return Bf16Products(weights_t, grad_w)
    if precision != "fp32":
        raise ValueError(f"precision: expected fp32 or bf16, got {precision!r}")
    return Fp32Products(weights_t)
