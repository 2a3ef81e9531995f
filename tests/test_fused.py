from __future__ import annotations

import pytest
import torch

from search.engine.config import LOSSES, ModelConfig, TrainConfig
from search.engine.fused import FUSED_ACTIVATIONS, FusedMLPStep, supports
from search.engine.model import build_mlp
from search.engine.optim import BACKENDS, FlatOptimizer
from search.engine.steps import autograd_step
from search.engine.train import fit


def _pair(activation: str, loss: str, l1: float, backend: str, batch: int = 16):
    torch.manual_seed(0)
    cfg = ModelConfig(hidden=(24, 12), activation=activation)
    fused_model, ref_model = build_mlp(cfg), build_mlp(cfg)
    ref_model.load_state_dict(fused_model.state_dict())
    fused_opt = FlatOptimizer(list(fused_model.parameters()), "sgd", 0.1, backend=backend)
    ref_opt = FlatOptimizer(list(ref_model.parameters()), "sgd", 0.1)
    step = FusedMLPStep(fused_model, fused_opt, activation, loss, l1, 0.0, batch)
    ref = autograd_step(ref_model, ref_opt, TrainConfig(loss=loss, l1=l1))
    return step, fused_opt, ref, ref_opt


# "compiled": the CPU's kernels (search.engine.kernels); "torch": tensor operations, as on a GPU.
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("l1", [0.0, 1e-3])
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", FUSED_ACTIVATIONS)
def test_fused_step_matches_autograd(activation, loss, l1, backend):
    step, fused_opt, ref, ref_opt = _pair(activation, loss, l1, backend)
    x, y = torch.randn(16, 784), torch.randint(0, 10, (16,))
    for batch in (slice(0, 16), slice(0, 11)):  # a full and a partial last batch
        got, want = step.step(x[batch], y[batch]), ref(x[batch], y[batch])
        assert got.item() == pytest.approx(want.item(), rel=1e-5)
        torch.testing.assert_close(fused_opt.grad, ref_opt.grad, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(fused_opt.flat, ref_opt.flat, rtol=1e-5, atol=1e-6)


def test_gelu_falls_back_to_autograd(tiny_splits):
    assert not supports("gelu")
    result = fit(ModelConfig(activation="gelu"), TrainConfig(epochs=1), tiny_splits)
    assert result.step == "autograd" and result.history[0].val_acc > 0.5


def test_fused_and_autograd_training_reach_the_same_accuracy(tiny_splits):
    a = fit(ModelConfig(), TrainConfig(epochs=2), tiny_splits)
    b = fit(ModelConfig(), TrainConfig(epochs=2, fused=False), tiny_splits)
    assert (a.step, b.step) == ("fused", "autograd")
    assert abs(a.history[-1].val_acc - b.history[-1].val_acc) <= 0.01


def test_fused_dropout_zeroes_dropped_units_and_still_learns(tiny_splits):
    torch.manual_seed(0)
    model = build_mlp(ModelConfig(hidden=(64,), dropout=0.5))
    step = FusedMLPStep(
        model, FlatOptimizer(list(model.parameters()), "sgd", 0.1), "relu", "nll", 0.0, 0.5, 32
    )
    step.step(torch.randn(32, 784), torch.randint(0, 10, (32,)))
    mask, dropped = step.masks[0], step.dropped[0]
    assert set(mask.unique().tolist()) == {0.0, 2.0}  # kept units are scaled by 1 / (1 - p)
    assert dropped[mask == 0].abs().sum().item() == 0.0
    result = fit(ModelConfig(dropout=0.5), TrainConfig(epochs=2), tiny_splits)
    assert result.step == "fused" and result.history[-1].val_acc > 0.8
