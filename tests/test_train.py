from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from search.engine.config import ModelConfig, TrainConfig
from search.engine.model import build_mlp
from search.engine.optim import BACKENDS, OPTIMIZERS, FlatOptimizer
from search.engine.steps import loss_fn
from search.engine.train import fit
from search.tasks.mlp.vocabulary import BASE_LR

from .helpers import lockstep, torch_optimizer


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
@pytest.mark.parametrize("kind", OPTIMIZERS)
def test_flat_optimizer_follows_torch_optim_step_for_step(kind, weight_decay, backend):
    torch.manual_seed(0)
    ours, ref = build_mlp(ModelConfig(hidden=(16, 8))), build_mlp(ModelConfig(hidden=(16, 8)))
    ref.load_state_dict(ours.state_dict())
    lr = BASE_LR[kind]
    flat = FlatOptimizer(list(ours.parameters()), kind, lr, weight_decay, backend)
    torch_opt = torch_optimizer(kind, ref.parameters(), lr, weight_decay)
    lockstep(ours, flat, ref, torch_opt, steps=5)


def test_mse_compares_softmax_probabilities_with_one_hot_targets():
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    y = torch.tensor([0])
    probs = torch.softmax(logits, dim=1)
    expected = ((probs - torch.tensor([[1.0, 0.0, 0.0]])) ** 2).mean()
    assert loss_fn("mse", logits, y).item() == pytest.approx(expected.item())
    logp = torch.log_softmax(logits, dim=1)
    expected_ref = ((logp - torch.tensor([[1.0, 0.0, 0.0]])) ** 2).mean()
    assert loss_fn("mse_logprob", logits, y).item() == pytest.approx(expected_ref.item())


def test_nll_and_cross_entropy_are_the_same_quantity():
    logits, y = torch.randn(8, 10), torch.randint(0, 10, (8,))
    assert loss_fn("nll", logits, y).item() == pytest.approx(
        loss_fn("cross_entropy", logits, y).item()
    )


def test_training_learns_the_synthetic_digits(tiny_splits):
    result = fit(ModelConfig(), TrainConfig(epochs=3), tiny_splits)
    assert result.outcome == "completed"
    assert result.history[-1].val_acc > 0.9
    assert result.history[-1].train_loss < result.history[0].train_loss


def test_same_seed_gives_the_same_numbers_on_cpu(tiny_splits):
    cfg = TrainConfig(epochs=2, seed=7)
    a = fit(ModelConfig(dropout=0.2), cfg, tiny_splits)
    b = fit(ModelConfig(dropout=0.2), cfg, tiny_splits)
    assert [(r.train_loss, r.val_acc, r.test_acc) for r in a.history] == [
        (r.train_loss, r.val_acc, r.test_acc) for r in b.history
    ]
    assert a.curve == b.curve


def test_history_records_every_epoch_and_samples_seen(tiny_splits):
    result = fit(ModelConfig(), TrainConfig(epochs=2, batch_size=64, log_every=5), tiny_splits)
    assert [r.epoch for r in result.history] == [1, 2]
    assert [r.samples_seen for r in result.history] == [1000, 2000]
    # 16 batches per epoch (15 of 64, one of 40) -> curve points after 5, 10, 15, 16 batches
    assert [s for s, _ in result.curve[:4]] == [320, 640, 960, 1000]
    assert result.curve[-1][0] == 2000
    assert all(math.isfinite(v) for _, v in result.curve)


def test_non_finite_loss_ends_the_run_as_diverged(tiny_splits):
    cfg = TrainConfig(optimizer="sgd", lr=1e12, epochs=3)
    result = fit(ModelConfig(), cfg, tiny_splits)
    assert result.outcome == "diverged"
    assert len(result.history) < 3


def test_on_epoch_returning_true_stops_the_run(tiny_splits):
    result = fit(
        ModelConfig(), TrainConfig(epochs=5), tiny_splits, on_epoch=lambda r: r.epoch == 2
    )
    assert result.outcome == "stopped"
    assert len(result.history) == 2


def test_l1_penalty_is_part_of_the_training_loss(tiny_splits):
    plain = fit(ModelConfig(), TrainConfig(epochs=1), tiny_splits)
    penalised = fit(ModelConfig(), TrainConfig(epochs=1, l1=1e-3), tiny_splits)
    assert penalised.history[0].train_loss > plain.history[0].train_loss + 0.5


def test_bad_training_values_name_the_argument():
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)


def test_the_cpu_kernels_still_work_where_no_cache_folder_is_writable(monkeypatch):
    import importlib

    import numba.core.caching

    from search.engine import kernels

    monkeypatch.setattr(numba.core.caching.CacheImpl, "_locator_classes", [])
    try:
        uncached = importlib.reload(kernels)
        p, g = np.ones(4, np.float32), np.full(4, 0.5, np.float32)
        scalars = (np.float32(v) for v in (0.1, 0.9, 0.0))
        uncached.sgd(p, g, np.zeros(4, np.float32), *scalars, False)
        assert p.tolist() == pytest.approx([0.95] * 4)
    finally:
        monkeypatch.undo()
        importlib.reload(kernels)
