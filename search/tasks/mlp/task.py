"""The built-in task: the reference study's MLP on MNIST-style data, trained by the fused engine.

A task like any other (``search.task``): ``load_data`` reads the study's dataset with its
validation split, ``train`` maps a point of the MLP's vocabulary (``vocabulary``) onto the
engine's configurations and runs ``search.engine.train.fit``, reporting every epoch and keeping
the engine's own checkpoint through the context. A run is judged by the epoch the study's
``judge_epoch`` names (last, or best for the reference grid), and returns that epoch's
validation and test figures; the final step trains on every training image and reads the test
set once, after its last epoch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, replace
from typing import Any

from search.engine.checkpoint import Checkpoint
from search.engine.config import ModelConfig, TrainConfig
from search.engine.data import Splits
from search.engine.history import EpochRecord
from search.engine.train import TrainResult, fit, warm_up
from search.task import Context, DataContext, Pruned, load_mnist
from search.tasks.mlp.vocabulary import to_configs


def load_data(ctx: DataContext) -> Splits:
    return load_mnist(ctx)  # the study's dataset and validation size


def train(params: dict[str, Any], ctx: Context) -> dict[str, float]:
    model_cfg, train_cfg = to_configs(params, ctx.seed, ctx.settings.get("max_epochs"))
    train_cfg = replace(train_cfg, precision=ctx.precision)
    note = getattr(ctx.recorder, "note", lambda key, value: None)
    note("config", {"model": asdict(model_cfg), "train": asdict(train_cfg)})
    note("train_images", len(ctx.data.train_x))
    if ctx.final:
        return _final(model_cfg, train_cfg, ctx)
    judge = ctx.settings.get("judge_epoch", "last")
    note("judge", judge)
    warm_up(model_cfg, train_cfg, ctx.data)  # so "seconds" times this run's training only
    state = ctx.restore()

    def on_epoch(rec: EpochRecord) -> bool:
        ctx.report(rec.epoch, **{k: v for k, v in asdict(rec).items() if k != "epoch"})
        return False  # a pruner stops the run by raising Pruned

    result = fit(
        model_cfg,
        train_cfg,
        ctx.data,
        on_epoch,
        resume=None if state is None else Checkpoint.from_state(state),
        keep=lambda checkpoint: ctx.checkpoint(checkpoint.to_state()),
    )
    _note_run(note, result, ctx)
    if result.outcome == "diverged":
        epoch = len(result.history) + 1
        raise Pruned(f"diverged: non-finite training loss in epoch {epoch}")
    judged = result.judged(judge)
    assert judged is not None  # a completed run has at least one epoch
    note("judged_epoch", judged.epoch)
    ctx.save_weights(result.model)
    return {
        "val_acc": judged.val_acc,
        "val_loss": judged.val_loss,
        "test_acc": judged.test_acc,
        "seconds": result.seconds,
        "n_params": float(result.n_params),
    }


def _note_run(note: Any, result: TrainResult, ctx: Context) -> None:
    note("n_params", result.n_params)
    note("curve", [list(p) for p in result.curve])
    run = {"device": str(ctx.device), "step": result.step, "precision": ctx.precision}
    if result.graph_fallback:
        run["graph_fallback"] = result.graph_fallback
    if result.peak_gpu_mib:
        run["peak_gpu_mib"] = round(result.peak_gpu_mib, 1)
    note("run", run)


def _final(model_cfg: ModelConfig, train_cfg: TrainConfig, ctx: Context) -> dict[str, float]:
    """Every training image (the data has no validation split), the test set read once."""
    result = fit(model_cfg, replace(train_cfg, every_epoch=False), ctx.data)
    last = result.history[-1] if result.history else None
    if result.outcome != "completed" or last is None or math.isnan(last.test_acc):
        raise Pruned(f"diverged: the final run ended {result.outcome}")
    ctx.save_weights(result.model)
    return {"test_acc": last.test_acc, "seconds": result.seconds}
