"""Train stage: the one training loop, as two functions (``train_one_epoch``, ``evaluate``).

Batches are gathered from the on-device tensors with a seeded permutation per epoch into
preallocated buffers: no DataLoader, no per-sample transform, and no host-device
synchronisation inside an epoch (losses stay on the device until the epoch ends).
``fit`` runs the epochs and records everything a chart needs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from search import signals
from search.engine import graphs
from search.engine.checkpoint import Checkpoint
from search.engine.config import ModelConfig, TrainConfig
from search.engine.data import Splits
from search.engine.history import EpochRecord, judged_epoch
from search.engine.model import build_mlp, count_parameters
from search.engine.optim import FlatOptimizer
from search.engine.steps import Step, loss_fn, make_step


@dataclass
class TrainResult:
    history: list[EpochRecord] = field(default_factory=list)
    curve: list[tuple[int, float]] = field(default_factory=list)  # (samples seen, mean loss)
    outcome: str = "completed"  # completed | diverged | stopped (by the on_epoch callback)
    step: str = "autograd"  # which training step ran: fused+graph | fused | autograd
    graph_fallback: str | None = None  # why a CUDA graph could not be captured, if it could not
    peak_gpu_mib: float | None = None  # the process's peak GPU memory during the fit (CUDA only)
    n_params: int = 0
    seconds: float = 0.0  # wall time of the whole fit, evaluation included
    model: nn.Module | None = None

    def judged(self, judge: str) -> EpochRecord | None:
        """The epoch this run is judged by (search.engine.history.judged_epoch)."""
        return judged_epoch(self.history, judge)

    def save_weights(self, path: Path) -> None:
        """The trained model's weights, as ``torch.save`` writes a state dict."""
        assert self.model is not None
        torch.save(self.model.state_dict(), path)

    def to_attrs(self, judge: str) -> dict[str, object]:
        """JSON-serialisable figures, enough to redraw every chart of this run."""
        judged = self.judged(judge)
        return {
            "history": [asdict(r) for r in self.history],
            "train_curve": [list(p) for p in self.curve],
            "outcome": self.outcome,
            "step": self.step,
            **({"graph_fallback": self.graph_fallback} if self.graph_fallback else {}),
            **({"peak_gpu_mib": round(self.peak_gpu_mib, 1)} if self.peak_gpu_mib else {}),
            "n_params": self.n_params,
            "seconds": round(self.seconds, 3),
            "judge": judge,
            "judged_epoch": judged.epoch if judged else None,
            "test_acc_judged": judged.test_acc if judged else None,
            "test_acc_final": self.history[-1].test_acc if self.history else None,
        }


def train_one_epoch(
    model: nn.Module,
    step: Step,
    batch_size: int,
    x: torch.Tensor,
    y: torch.Tensor,
    generator: torch.Generator,
    buffers: tuple[torch.Tensor, torch.Tensor],
) -> torch.Tensor:
    """One pass over (x, y) in a seeded order; returns the per-batch losses, still on device."""
    model.train()
    n = len(x)
    perm = torch.randperm(n, generator=generator).to(x.device)
    losses = torch.empty(math.ceil(n / batch_size), device=x.device)
    xbuf, ybuf = buffers
    for i, start in enumerate(range(0, n, batch_size)):
        signals.stop_point()  # between batches: a stop ends the run here
        idx = perm[start : start + batch_size]
        xb, yb = (xbuf, ybuf) if len(idx) == batch_size else (xbuf[: len(idx)], ybuf[: len(idx)])
        torch.index_select(x, 0, idx, out=xb)
        torch.index_select(y, 0, idx, out=yb)
        losses[i] = step(xb, yb)
    return losses


@torch.inference_mode()
def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: str, batch: int = 1000
) -> tuple[float, float]:
    """Mean loss (the training criterion, without penalty) and accuracy over (x, y)."""
    model.eval()
    total_loss = torch.zeros((), device=x.device)
    correct = torch.zeros((), dtype=torch.int64, device=x.device)
    for start in range(0, len(x), batch):
        xb, yb = x[start : start + batch], y[start : start + batch]
        logits = model(xb)
        total_loss += loss_fn(loss, logits, yb) * len(xb)
        correct += (logits.argmax(dim=1) == yb).sum()
    return total_loss.item() / len(x), correct.item() / len(x)


WARM_UP_BATCHES = 2  # of the run's own batch size
WARM_UP_EVAL = 256  # validation and test images the warm-up evaluates


def warm_up(model_cfg: ModelConfig, cfg: TrainConfig, data: Splits) -> None:
    """A one-epoch run of the same configuration on a few batches, untimed and thrown away, so
    that one-time costs (torch's first calls, compiling the fused kernels: about a second in a
    process's first trial) are not counted in the next ``fit``'s seconds."""
    n, k = WARM_UP_BATCHES * cfg.batch_size, WARM_UP_EVAL
    tiny = Splits(
        data.train_x[:n],
        data.train_y[:n],
        data.val_x[:k],
        data.val_y[:k],
        data.test_x[:k],
        data.test_y[:k],
    )
    short = replace(cfg, epochs=1, schedule=replace(cfg.schedule, warmup_epochs=0.0))
    fit(model_cfg, short, tiny)


@dataclass
class _Run:
    """One fit's moving parts: built once, perhaps restored, then advanced epoch by epoch."""

    model: nn.Module
    opt: FlatOptimizer
    generator: torch.Generator  # the batch order's
    buffers: tuple[torch.Tensor, torch.Tensor]
    step: Step
    result: TrainResult
    seen: int = 0  # training samples processed so far
    first: int = 1  # the first epoch to train


def _build(model_cfg: ModelConfig, cfg: TrainConfig, data: Splits) -> _Run:
    """The model, its optimizer (with the schedule's rates), the batch order and the step, in
    the order of their random draws: the seed's first numbers initialise the weights."""
    torch.manual_seed(cfg.seed)
    model = build_mlp(model_cfg).to(data.device)
    steps_per_epoch = math.ceil(len(data.train_x) / cfg.batch_size)
    rates = None  # a constant rate stays a number: the reference's arithmetic, unchanged
    if cfg.schedule.kind != "constant":
        rates = cfg.schedule.rates(cfg.lr, steps_per_epoch, cfg.epochs)
    opt = FlatOptimizer(
        list(model.parameters()), cfg.optimizer, cfg.lr, cfg.weight_decay, rates=rates
    )
    generator = torch.Generator().manual_seed(cfg.seed)
    buffers = (
        torch.empty(cfg.batch_size, data.train_x.shape[1], device=data.device),
        torch.empty(cfg.batch_size, dtype=torch.int64, device=data.device),
    )
    step, kind = make_step(model, opt, model_cfg, cfg, buffers)
    result = TrainResult(n_params=count_parameters(model), model=model, step=kind)
    return _Run(model, opt, generator, buffers, step, result)


def _restore(run: _Run, resume: Checkpoint, device: torch.device) -> None:
    """Go on after the checkpoint's epoch; after the build, whose random draws are done."""
    run.opt.restore(resume.params, resume.state, resume.steps)
    torch.set_rng_state(resume.rng)
    run.generator.set_state(resume.batch_rng)
    if device.type == "cuda" and resume.cuda_rng is not None:
        torch.cuda.set_rng_state(resume.cuda_rng, device)
    run.result.history, run.result.curve = list(resume.history), list(resume.curve)
    run.seen, run.first = resume.seen, resume.epoch + 1


def _epoch(run: _Run, cfg: TrainConfig, data: Splits, epoch: int) -> EpochRecord | None:
    """Train one epoch and measure it; None when its training loss is not finite."""
    t0 = time.perf_counter()
    losses = train_one_epoch(
        run.model, run.step, cfg.batch_size, data.train_x, data.train_y, run.generator,
        run.buffers,
    )  # fmt: skip
    values = losses.tolist()  # the epoch's one synchronisation with the device
    seconds = time.perf_counter() - t0
    for i in range(0, len(values), cfg.log_every):
        chunk = values[i : i + cfg.log_every]
        seen_at = run.seen + min((i + len(chunk)) * cfg.batch_size, len(data.train_x))
        run.result.curve.append((seen_at, sum(chunk) / len(chunk)))
    run.seen += len(data.train_x)
    if not all(math.isfinite(v) for v in values):
        return None
    val_loss = val_acc = test_loss = test_acc = math.nan  # not measured this epoch
    if cfg.every_epoch:
        val_loss, val_acc = evaluate(run.model, data.val_x, data.val_y, cfg.loss, cfg.eval_batch)
    if cfg.every_epoch or epoch == cfg.epochs:
        test_loss, test_acc = evaluate(
            run.model, data.test_x, data.test_y, cfg.loss, cfg.eval_batch
        )
    train_loss = sum(values) / len(values)
    return EpochRecord(
        epoch=epoch,
        train_loss=train_loss,
        val_loss=val_loss,
        val_acc=val_acc,
        test_loss=test_loss,
        test_acc=test_acc,
        seconds=round(seconds, 4),
        samples_seen=run.seen,
    )


def fit(
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    data: Splits,
    on_epoch: Callable[[EpochRecord], bool] | None = None,
    resume: Checkpoint | None = None,
    keep: Callable[[Checkpoint], None] | None = None,
) -> TrainResult:
    """Train for ``cfg.epochs``; ``on_epoch`` sees each record and returns True to stop early.
    ``keep`` gets a checkpoint at the end of every epoch (after ``on_epoch``); ``resume``
    goes on from one, after its epoch, exactly as the run that wrote it would have."""
    start = time.perf_counter()
    cuda = data.device.type == "cuda"
    if cuda:  # the peak from here on counts what is already allocated: the worker's data
        torch.cuda.reset_peak_memory_stats(data.device)
    run = _build(model_cfg, cfg, data)
    if resume is not None:
        _restore(run, resume, data.device)
    result = run.result
    for epoch in range(run.first, cfg.epochs + 1):
        record = _epoch(run, cfg, data, epoch)
        if record is None:
            result.outcome = "diverged"
            break
        result.history.append(record)
        if on_epoch is not None and on_epoch(record):
            result.outcome = "stopped"
            break
        if keep is not None:
            keep(_checkpoint(epoch, run.opt, run.generator, result, run.seen, data.device))
    if isinstance(run.step, graphs.GraphedStep):
        result.graph_fallback = run.step.fallback_reason
        result.step = "fused+graph" if run.step.captured else "fused"
    if cuda:
        result.peak_gpu_mib = torch.cuda.max_memory_allocated(data.device) / 2**20
    result.seconds = time.perf_counter() - start
    return result


def _checkpoint(
    epoch: int,
    opt: FlatOptimizer,
    generator: torch.Generator,
    result: TrainResult,
    seen: int,
    device: torch.device,
) -> Checkpoint:
    """Everything a run needs to go on after ``epoch`` exactly as it would have."""
    params, state, steps = opt.snapshot()
    return Checkpoint(
        epoch=epoch,
        params=params,
        state=state,
        steps=steps,
        rng=torch.get_rng_state(),
        batch_rng=generator.get_state(),
        cuda_rng=torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        history=list(result.history),
        curve=list(result.curve),
        seen=seen,
    )
