from __future__ import annotations

import re

import pytest
import torch

from search.engine.config import LOSSES, ModelConfig, TrainConfig
from search.engine.fused import FUSED_ACTIVATIONS, FusedMLPStep, supports
from search.engine.model import build_mlp
from search.engine.optim import BACKENDS, FlatOptimizer
from search.engine.steps import autograd_step, loss_fn
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


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss", ["nll", "cross_entropy"])
def test_a_label_smoothed_fused_step_matches_autograd(loss, backend):
    torch.manual_seed(0)
    cfg = ModelConfig(hidden=(24,))
    fused_model, ref_model = build_mlp(cfg), build_mlp(cfg)
    ref_model.load_state_dict(fused_model.state_dict())
    fused_opt = FlatOptimizer(list(fused_model.parameters()), "sgd", 0.1, backend=backend)
    ref_opt = FlatOptimizer(list(ref_model.parameters()), "sgd", 0.1)
    step = FusedMLPStep(fused_model, fused_opt, "relu", loss, 0.0, 0.0, 16, label_smoothing=0.1)
    ref = autograd_step(ref_model, ref_opt, TrainConfig(loss=loss, label_smoothing=0.1))
    x, y = torch.randn(16, 784), torch.randint(0, 10, (16,))
    for batch in (slice(0, 16), slice(0, 11)):
        got, want = step.step(x[batch], y[batch]), ref(x[batch], y[batch])
        assert got.item() == pytest.approx(want.item(), rel=1e-5)
        torch.testing.assert_close(fused_opt.grad, ref_opt.grad, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(fused_opt.flat, ref_opt.flat, rtol=1e-5, atol=1e-6)


def test_the_autograd_reference_is_pytorchs_label_smoothed_cross_entropy():
    logits, y = torch.randn(8, 10), torch.randint(0, 10, (8,))
    want = torch.nn.CrossEntropyLoss(label_smoothing=0.2)(logits, y)
    assert loss_fn("nll", logits, y, 0.2).item() == pytest.approx(want.item())
    assert loss_fn("nll", logits, y, 0.2).item() != pytest.approx(loss_fn("nll", logits, y).item())


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"label_smoothing": 1.0}, "label_smoothing: expected a share in [0, 1)"),
        ({"label_smoothing": 0.1, "loss": "mse"}, "only for the nll and cross_entropy losses"),
    ],
)
def test_label_smoothing_outside_its_range_or_loss_is_a_value_error(cfg, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        TrainConfig(**cfg)


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


def _masked_reference_step(ref, opt, x, y, in_mask, masks, l1):
    """Autograd through the MLP with the fused step's own dropout masks; L1 on the weights."""
    linears = [m for m in ref if isinstance(m, torch.nn.Linear)]
    h = x * in_mask
    for layer, mask in zip(linears[:-1], masks, strict=True):
        h = torch.relu(layer(h)) * mask
    loss = loss_fn("nll", linears[-1](h), y) + l1 * sum(m.weight.abs().sum() for m in linears)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.detach()


@pytest.mark.parametrize("backend", BACKENDS)
def test_input_dropout_dropout_l1_and_weight_decay_combine_as_in_autograd(backend):
    torch.manual_seed(0)
    cfg = ModelConfig(hidden=(24, 12), dropout=0.3, input_dropout=0.2)
    model, ref = build_mlp(cfg), build_mlp(ModelConfig(hidden=(24, 12)))
    ref.load_state_dict(dict(zip(ref.state_dict(), model.state_dict().values(), strict=True)))
    opt = FlatOptimizer(list(model.parameters()), "sgd", 0.1, weight_decay=0.01, backend=backend)
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
    step = FusedMLPStep(model, opt, "relu", "nll", 1e-3, 0.3, 16, input_dropout=0.2)
    x, y = torch.randn(16, 784), torch.randint(0, 10, (16,))
    for n in (16, 11):  # a full and a partial last batch
        got = step.step(x[:n], y[:n])
        in_mask, masks = step.in_mask[:n], [m[:n] for m in step.masks]
        assert set(in_mask.unique().tolist()) == {0.0, 1 / 0.8}  # kept pixels scaled up
        want = _masked_reference_step(ref, ref_opt, x[:n], y[:n], in_mask, masks, 1e-3)
        assert got.item() == pytest.approx(want.item(), rel=1e-5)
        ours = [p.detach() for p in model.parameters()]
        for a, b in zip(ours, ref.parameters(), strict=True):
            torch.testing.assert_close(a, b.detach(), rtol=1e-5, atol=1e-6)


def test_a_fit_with_input_dropout_learns_on_both_steps(tiny_splits):
    for fused in (True, False):
        result = fit(
            ModelConfig(input_dropout=0.2), TrainConfig(epochs=2, fused=fused), tiny_splits
        )
        assert result.step == ("fused" if fused else "autograd")
        assert result.history[-1].val_acc > 0.5
