"""Training steps: the loss functions and the choice of step a fit runs.

Three steps compute the same update: a captured CUDA graph of the fused step
(search.engine.graphs), the hand-written fused step (search.engine.fused), and the textbook
autograd step, which every model supports. ``make_step`` picks the fastest one the model and
the device allow.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from search.engine import fused, graphs
from search.engine.config import LOSSES, ModelConfig, TrainConfig
from search.engine.model import weight_matrices
from search.engine.optim import FlatOptimizer

Step = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# Losses on the logits z against labels y:
#   nll:           nll_loss(log_softmax(z), y), the reference's baseline
#   cross_entropy: cross_entropy(z, y), the same quantity computed by one fused op
#   mse:           mse_loss(softmax(z), one_hot(y)): probabilities against one-hot targets,
#                  mean over batch x 10 (the fair form of MSE for a classifier)
#   mse_logprob:   mse_loss(log_softmax(z), one_hot(y)), exactly what the reference ran
# (the names are search.engine.config.LOSSES)


def loss_fn(
    name: str, logits: torch.Tensor, y: torch.Tensor, smoothing: float = 0.0
) -> torch.Tensor:
    """The loss ``name``; ``smoothing`` (nll, cross_entropy) mixes uniform targets in."""
    if smoothing and name in ("nll", "cross_entropy"):
        return F.cross_entropy(logits, y, label_smoothing=smoothing)
    if name == "nll":
        return F.nll_loss(F.log_softmax(logits, dim=1), y)
    if name == "cross_entropy":
        return F.cross_entropy(logits, y)
    target = F.one_hot(y, logits.shape[1]).to(logits.dtype)
    if name == "mse":
        return F.mse_loss(F.softmax(logits, dim=1), target)
    if name == "mse_logprob":
        return F.mse_loss(F.log_softmax(logits, dim=1), target)
    raise ValueError(f"loss: expected one of {', '.join(LOSSES)}, got {name!r}")


def autograd_step(model: nn.Module, opt: FlatOptimizer, cfg: TrainConfig) -> Step:
    """The textbook step: forward, loss (+ L1 penalty), backward, optimizer update; with
    ``precision`` bf16 the forward's products run under bf16 autocast (the weights, the
    optimizer and the loss stay fp32)."""
    weights = weight_matrices(model) if cfg.l1 else []
    device = opt.flat.device.type
    cast = cfg.precision == "bf16"

    def step(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device, dtype=torch.bfloat16, enabled=cast):
            logits = model(xb)
        loss = loss_fn(cfg.loss, logits.float(), yb, cfg.label_smoothing)
        if weights:
            loss = loss + cfg.l1 * sum(w.abs().sum() for w in weights)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.detach()

    return step


def make_step(
    model: nn.Module,
    opt: FlatOptimizer,
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    buffers: tuple[torch.Tensor, torch.Tensor],
) -> tuple[Step, str]:
    """The fastest step the model and device allow, and its name (see TrainResult.step)."""
    if not (cfg.fused and fused.supports(model_cfg.activation)):
        return autograd_step(model, opt, cfg), "autograd"
    fused_step = fused.FusedMLPStep(
        model,
        opt,
        model_cfg.activation,
        cfg.loss,
        cfg.l1,
        model_cfg.dropout,
        cfg.batch_size,
        label_smoothing=cfg.label_smoothing,
        input_dropout=model_cfg.input_dropout,
        precision=cfg.precision,
    )
    if cfg.cuda_graph and opt.flat.device.type == "cuda":
        return graphs.GraphedStep(fused_step, buffers), "fused+graph"
    return fused_step.step, "fused"
