"""The task contract: how your own PyTorch model gets the whole search service.

A task is a Python file (``--task path/to/task.py``) or module (``--task package.module``;
``--task package.module:name`` takes the object ``name`` in it) with one function, one optional::

    def load_data(ctx: DataContext) -> Any:                       # optional
        # Once per worker process; the result is ``ctx.data`` in every trial the process runs,
        # never reloaded or copied per trial. Honour ``ctx.train_limit`` (a quick look).
        ...

    def train(params: dict[str, Any], ctx: Context) -> dict[str, float]:
        # One configuration, from a fresh start or from ``ctx.restore()``; returns its final
        # metrics as numbers. Report every epoch: ``report`` records and prunes.
        model, optimizer = ...           # built first: their random draws come before restore
        state = ctx.restore()            # None, or what the last ctx.checkpoint() was given
        start = 1 if state is None else state["epoch"] + 1
        for epoch in range(start, ctx.epochs + 1):
            ...                          # draw randomness from ctx.generator or torch's
            ctx.report(epoch, train_loss=..., val_acc=...)     # raises Pruned to stop
            ctx.checkpoint({"epoch": epoch, "model": ..., "optimizer": ...})
        return {"val_acc": ...}

and, optionally, module attributes the service reads:

- ``SPACE``: its default space file, relative to the task file (default: ``NAME.toml`` beside
  ``NAME.py``); ``--space FILE.toml`` overrides it.
- ``OBJECTIVE``: what a study optimises, ``("val_loss", "minimize")`` or a list of such pairs
  for a Pareto search; a space file's ``[objective]`` table overrides it.

The service seeds torch's, numpy's and Python's generators with ``ctx.seed`` before each call
(``seed_all``), records every metric ``report`` gets, reports the first objective's metric to
the pruner, keeps checkpoints (adding every random state itself) so that a rerun of an
interrupted point resumes where it stopped, and times the run. Report, then checkpoint, in
each epoch; compute what ``train`` returns after the loop (a run resumed after its last epoch
runs no epoch at all). A resume is bit for bit on the same device and thread count. In the
final step (``search.final``) ``ctx.final`` is true: train on training plus validation data,
compute the test metrics once at the end and return them. ``python -m search.check --task
FILE`` checks that a task resumes exactly. The service side of ``Context`` is a ``Recorder``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from search import signals
from search.engine.data import Splits, load
from search.engine.datasets import DataConfig

WEIGHTS_FILE = "weights.pt"  # in the trial's folder: what save_weights writes


class Pruned(Exception):  # noqa: N818 - the name a task author reads in a traceback
    """Raised by ``ctx.report`` when the trial must stop: its pruner said so, or a metric is
    not a finite number (the run diverged). Let it propagate; the trial is recorded pruned."""


class Recorder(Protocol):
    """What the service does behind a ``Context``: ``search.study`` for a study's trial,
    ``search.check`` for a local check."""

    def report(self, epoch: int, metrics: dict[str, float]) -> str | None:
        """Record one epoch's metrics; return why the trial must stop, or None."""
        ...

    def save(self, payload: dict[str, Any]) -> None:
        """Keep a checkpoint, atomically."""
        ...

    def load(self) -> dict[str, Any] | None:
        """The checkpoint this trial resumes from, or None."""
        ...


@dataclass(frozen=True)
class DataContext:
    """What ``load_data`` gets: where the data is, the seed, the device and the caps."""

    seed: int  # the study's seed (the final step: the model's seed)
    device: torch.device
    data_dir: Path  # --data-dir, else $SEARCH_DATA_DIR, else ./data
    train_limit: int | None = None  # keep at most this many training examples (--train-limit)
    final: bool = False  # the final step: validation data is training data too
    settings: Mapping[str, Any] = field(default_factory=dict)  # the study's settings, read-only
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("search.task"))


@dataclass(frozen=True)
class Context(DataContext):
    """What ``train`` gets: the data, the trial's budget and folder, and the service's hooks."""

    data: Any = None  # what load_data returned (None without load_data)
    epochs: int = 1  # the trial's epoch budget: its ``epochs`` parameter or --epochs, capped
    trial_dir: Path | None = None  # a folder of this trial's own (None: outside a study)
    precision: str = "fp32"  # fp32 or bf16: what ``autocast`` does
    recorder: Recorder | None = None
    generator: torch.Generator = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "generator", torch.Generator().manual_seed(self.seed))

    def report(self, epoch: int, **metrics: float) -> None:
        """Record this epoch's metrics (numbers or 0-d tensors); raise ``Pruned`` if the trial
        must stop. Epochs count from 1."""
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
            raise ValueError(f"report: epoch: expected a whole number from 1, got {epoch!r}")
        values = {name: as_number(f"report: {name}", v) for name, v in metrics.items()}
        bad = next((n for n, v in values.items() if not math.isfinite(v)), None)
        stop = self.recorder.report(epoch, values) if self.recorder else None
        if bad is not None:
            raise Pruned(f"diverged: {bad} is {values[bad]} in epoch {epoch}")
        if stop:
            raise Pruned(stop)

    def checkpoint(self, state: dict[str, Any]) -> None:
        """Keep ``state`` (tensors, numbers, strings, lists, dicts: what ``torch.save`` writes
        and ``torch.load(weights_only=True)`` reads), with every random state, atomically."""
        if self.recorder is not None:
            self.recorder.save({"state": state, "rng": random_states(self.generator)})

    def restore(self) -> Any:
        """The state of the last checkpoint of this point's interrupted run, with the random
        states as they were then; None for a fresh start. Call it after building the model and
        optimizer: their initialisation draws random numbers, which the restored states must
        follow, not precede."""
        payload = self.recorder.load() if self.recorder else None
        if payload is None:
            return None
        set_random_states(payload["rng"], self.generator)
        return payload["state"]

    def save_weights(self, model: torch.nn.Module) -> None:
        """Keep the trained model's weights (its state dict, which ``torch.load(path,
        weights_only=True)`` reads back): a search keeps the best trial's as a dashboard
        artifact, and ``search.final`` the winner's. Call it once, after the last epoch. A
        context without a trial folder (a task run by hand) keeps nothing."""
        if self.trial_dir is None:
            return
        self.trial_dir.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), self.trial_dir / WEIGHTS_FILE)

    def batches(
        self, *tensors: torch.Tensor, batch_size: int, shuffle: bool = True
    ) -> Iterator[tuple[torch.Tensor, ...]]:
        """Batches of tensors already in memory (``batches`` with ``ctx.generator``)."""
        return batches(*tensors, batch_size=batch_size, shuffle=shuffle, generator=self.generator)

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast for the forward pass where the study's precision is bf16, else
        nothing: a task writes ``with ctx.autocast():`` and no device checks."""
        if self.precision != "bf16":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)


def load_mnist(
    ctx: DataContext, dataset: str | None = None, val_size: int | None = None
) -> Splits:
    """MNIST, Fashion-MNIST or KMNIST from ``ctx.data_dir`` (torchvision's layout), as the
    built-in MLP reads it: normalised rows of 784 pixels on ``ctx.device``, a seeded
    validation split (none in the final step), at most ``ctx.train_limit`` training images.
    ``dataset`` and ``val_size`` default to the study's (``--dataset``, ``--val-size``).
    ``.reshape(-1, 1, 28, 28)`` gives images for a convolutional network."""
    s = ctx.settings
    config = DataConfig(
        dataset=dataset or s.get("dataset") or DataConfig.dataset,
        data_dir=str(ctx.data_dir),
        val_size=0 if ctx.final else val_size or s.get("val_size") or DataConfig.val_size,
        train_limit=ctx.train_limit,
        seed=ctx.seed,
    )
    return load(config, ctx.device)


def seed_all(seed: int) -> None:
    """Seed torch's, numpy's and Python's global generators: what the service does before
    each ``train`` (and ``load_data``), so a task that draws from them is reproducible."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def batches(
    *tensors: torch.Tensor,
    batch_size: int,
    shuffle: bool = True,
    generator: torch.Generator | None = None,
) -> Iterator[tuple[torch.Tensor, ...]]:
    """Batches of equally long tensors, in a fresh order each call when ``shuffle``: one
    ``index_select`` per batch on the tensors' own device, no per-sample DataLoader."""
    if not tensors or any(len(t) != len(tensors[0]) for t in tensors):
        raise ValueError("batches: expected one or more tensors of the same length")
    if batch_size < 1:
        raise ValueError(f"batches: batch_size: expected a positive count, got {batch_size}")
    n = len(tensors[0])
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    order = order.to(tensors[0].device)
    for start in range(0, n, batch_size):
        signals.stop_point()  # between batches: Ctrl-C or SIGTERM ends the trial here
        idx = order[start : start + batch_size]
        yield tuple(t.index_select(0, idx) for t in tensors)


def as_number(where: str, value: Any) -> float:
    """A metric as a float: a number, or a tensor or numpy value of one element."""
    if isinstance(value, torch.Tensor | np.ndarray | np.generic):
        count = value.numel() if isinstance(value, torch.Tensor) else value.size
        if count != 1:
            raise TypeError(f"{where}: expected one number, got {count} values")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{where}: expected a number, got {type(value).__name__} {value!r:.40}")
    return float(value)


def random_states(generator: torch.Generator) -> dict[str, Any]:
    """Every random state a task may draw from, as ``torch.load(weights_only=True)`` reads."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, py_state, py_gauss = random.getstate()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "generator": generator.get_state(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss),
        "python": (version, list(py_state), py_gauss),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_random_states(states: dict[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(states["torch"])
    generator.set_state(states["generator"])
    kind, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, py_state, py_gauss = states["python"]
    random.setstate((version, tuple(py_state), py_gauss))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
