"""What a training run is made of: the model's and the trainer's configurations, and the names
the engine supports. Plain dataclasses, no torch, so that spaces and views can use them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from search.engine.schedules import Schedule

ACTIVATIONS = ("relu", "sigmoid", "tanh", "gelu", "leaky_relu")  # built by search.engine.model
# The update rules of search.engine.optim; nesterov is SGD with Nesterov momentum.
OPTIMIZERS = ("adadelta", "sgd", "nesterov", "adam", "adamw")
LOSSES = ("nll", "cross_entropy", "mse", "mse_logprob")  # defined in search.engine.steps
PRECISIONS = ("fp32", "bf16")  # of a run's matrix products (search.engine.products)
PRECISION_SETTINGS = ("auto", *PRECISIONS)  # a study's: auto is resolved per device


@dataclass(frozen=True)
class ModelConfig:
    hidden: tuple[int, ...] = (128,)
    activation: str = "relu"
    dropout: float = 0.0  # drop probability after every hidden activation
    input_dropout: float = 0.0  # drop probability of each input pixel
    n_inputs: int = 784
    n_classes: int = 10

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"activation: expected one of {', '.join(ACTIVATIONS)}, got {self.activation!r}"
            )
        if not self.hidden or any(int(h) < 1 for h in self.hidden):
            raise ValueError(f"hidden: expected positive layer sizes, got {self.hidden!r}")
        for name in ("dropout", "input_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name}: expected a rate in [0, 1), got {getattr(self, name)}")


@dataclass(frozen=True)
class TrainConfig:
    optimizer: str = "adadelta"
    lr: float = 1.0
    schedule: Schedule = field(default_factory=Schedule)  # how the rate moves (constant)
    batch_size: int = 64
    epochs: int = 14
    loss: str = "nll"
    label_smoothing: float = 0.0  # nll and cross_entropy: targets (1 - e) one-hot + e / classes
    l1: float = 0.0  # strength of the L1 penalty on weight matrices, added to the loss
    weight_decay: float = 0.0  # L2, applied by the optimizer
    seed: int = 1  # weight initialisation, dropout and the batch order
    log_every: int = 40  # batches per point of the training-loss curve (the reference's 40)
    eval_batch: int = 1000  # the reference's test batch
    # Evaluate validation and test after every epoch (for charts and pruners); a final run
    # (search.final) has no validation set and reads the test set once, after its last epoch.
    every_epoch: bool = True
    fused: bool = True  # use the hand-written step (search.engine.fused) where it can
    # The matrix products' inputs: fp32, or bf16 where the device multiplies it fast
    # (search.engine.precision resolves "auto"); weights, optimizer and losses stay fp32.
    precision: str = "fp32"
    cuda_graph: bool = True  # on CUDA, replay the fused step as a captured graph

    def __post_init__(self) -> None:
        checks = [
            ("optimizer", self.optimizer in OPTIMIZERS, f"one of {', '.join(OPTIMIZERS)}"),
            ("loss", self.loss in LOSSES, f"one of {', '.join(LOSSES)}"),
            ("lr", self.lr > 0, "a positive number"),
            ("batch_size", self.batch_size >= 1, "a positive count"),
            ("epochs", self.epochs >= 1, "a positive count"),
            ("l1", self.l1 >= 0, "a non-negative strength"),
            ("weight_decay", self.weight_decay >= 0, "a non-negative strength"),
            ("log_every", self.log_every >= 1, "a positive count"),
            ("precision", self.precision in PRECISIONS, f"one of {', '.join(PRECISIONS)}"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(f"{name}: expected {expected}, got {getattr(self, name)!r}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(
                f"label_smoothing: expected a share in [0, 1), got {self.label_smoothing!r}"
            )
        if self.label_smoothing and self.loss not in ("nll", "cross_entropy"):
            raise ValueError(
                f"label_smoothing: only for the nll and cross_entropy losses, not {self.loss!r}"
            )
