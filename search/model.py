"""Model stage: a multilayer perceptron built from hidden sizes, an activation and dropout.

The network returns raw logits; the loss in ``search.train`` turns them into log-probabilities
(the reference applied ``log_softmax`` inside the model, which is the same arithmetic).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from search.errors import UsageError

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
}

# The reference's hidden sizes for 1, 3 and 5 layers.
REFERENCE_HIDDEN: dict[int, tuple[int, ...]] = {
    1: (128,),
    3: (128, 64, 64),
    5: (256, 128, 128, 64, 64),
}


@dataclass(frozen=True)
class ModelConfig:
    hidden: tuple[int, ...] = (128,)
    activation: str = "relu"
    dropout: float = 0.0  # drop probability after every hidden activation
    n_inputs: int = 784
    n_classes: int = 10

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise UsageError(
                f"activation: expected one of {', '.join(ACTIVATIONS)}, got {self.activation!r}"
            )
        if not self.hidden or any(int(h) < 1 for h in self.hidden):
            raise UsageError(f"hidden: expected positive layer sizes, got {self.hidden!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise UsageError(f"dropout: expected a rate in [0, 1), got {self.dropout}")


def build_mlp(cfg: ModelConfig) -> nn.Sequential:
    """Linear -> activation (-> dropout) for each hidden size, then Linear to the classes."""
    layers: list[nn.Module] = []
    width = cfg.n_inputs
    for size in cfg.hidden:
        layers += [nn.Linear(width, size), ACTIVATIONS[cfg.activation]()]
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
