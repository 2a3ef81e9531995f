"""Model stage: a multilayer perceptron built from hidden sizes, an activation and dropout.

The network returns raw logits; the loss in ``search.engine.steps`` turns them into
log-probabilities (the reference applied ``log_softmax`` inside the model: the same arithmetic).
"""

from __future__ import annotations

import torch
from torch import nn

from search.engine.config import ACTIVATIONS, ModelConfig

MODULES: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
}
assert tuple(MODULES) == ACTIVATIONS  # every name a configuration accepts can be built


def build_mlp(cfg: ModelConfig) -> nn.Sequential:
    """(Input dropout ->) Linear -> activation (-> dropout) for each hidden size, then Linear
    to the classes."""
    layers: list[nn.Module] = [nn.Dropout(cfg.input_dropout)] if cfg.input_dropout > 0 else []
    width = cfg.n_inputs
    for size in cfg.hidden:
        layers += [nn.Linear(width, size), MODULES[cfg.activation]()]
        if cfg.dropout > 0:
            layers.append(nn.Dropout(cfg.dropout))
        width = size
    layers.append(nn.Linear(width, cfg.n_classes))
    return nn.Sequential(*layers)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def weight_matrices(model: nn.Module) -> list[torch.Tensor]:
    """The layers' weight matrices (no biases): what an L1 penalty acts on."""
    return [m.weight for m in model.modules() if isinstance(m, nn.Linear)]
