"""Learning-rate schedules: the same rates as torch.optim.lr_scheduler, in both optimizer paths."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.optim import lr_scheduler as sched

from search.engine.config import ModelConfig, TrainConfig
from search.engine.model import build_mlp
from search.engine.optim import BACKENDS, OPTIMIZERS, FlatOptimizer
from search.engine.schedules import Schedule
from search.engine.train import fit
from search.tasks.mlp.vocabulary import BASE_LR

from .helpers import lockstep, torch_optimizer

PER_EPOCH, EPOCHS = 7, 4
TOTAL = PER_EPOCH * EPOCHS


def torch_schedule(schedule: Schedule, opt: torch.optim.Optimizer) -> sched.LRScheduler:
    """PyTorch's own scheduler for a Schedule, stepped once per batch."""
    if schedule.kind == "constant":
        return sched.ConstantLR(opt, factor=1.0)
    if schedule.kind == "step":
        return sched.StepLR(opt, step_size=PER_EPOCH, gamma=schedule.gamma)
    if schedule.kind == "onecycle":
        lr = opt.param_groups[0]["lr"]
        return sched.OneCycleLR(opt, max_lr=lr, total_steps=TOTAL, cycle_momentum=False)
    warm = round(schedule.warmup_epochs * PER_EPOCH)
    cosine = sched.CosineAnnealingLR(opt, T_max=TOTAL - warm)
    if not warm:
        return cosine
    rise = sched.LinearLR(opt, start_factor=1 / warm, end_factor=1.0, total_iters=warm - 1)
    return sched.SequentialLR(opt, [rise, cosine], milestones=[warm])


SCHEDULES = [
    Schedule("constant"),
    Schedule("step", gamma=0.5),
    Schedule("cosine"),
    Schedule("cosine", warmup_epochs=1),
    Schedule("onecycle"),
]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: f"{s.kind}-{s.warmup_epochs}")
def test_every_schedule_gives_pytorchs_rate_at_every_step(schedule):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    reference = torch_schedule(schedule, opt)
    expected = []
    for _ in range(TOTAL):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        reference.step()
    assert schedule.rates(0.1, PER_EPOCH, EPOCHS) == pytest.approx(expected, rel=1e-6, abs=1e-12)


def test_cosine_rises_through_its_warm_up_and_ends_near_zero():
    rates = Schedule("cosine", warmup_epochs=1).rates(1.0, PER_EPOCH, EPOCHS)
    assert rates[:PER_EPOCH] == pytest.approx([(k + 1) / PER_EPOCH for k in range(PER_EPOCH)])
    assert max(rates) == 1.0 and rates[-1] < 0.01


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", OPTIMIZERS)
def test_a_scheduled_flat_optimizer_follows_torch_optim_and_its_scheduler(kind, backend):
    torch.manual_seed(0)
    ours, ref = build_mlp(ModelConfig(hidden=(16, 8))), build_mlp(ModelConfig(hidden=(16, 8)))
    ref.load_state_dict(ours.state_dict())
    lr = BASE_LR[kind]
    schedule = Schedule("cosine", warmup_epochs=1)
    rates = schedule.rates(lr, PER_EPOCH, EPOCHS)
    flat = FlatOptimizer(list(ours.parameters()), kind, lr, 0.01, backend, rates=rates)
    torch_opt = torch_optimizer(kind, ref.parameters(), lr, 0.01)
    torch_sched = torch_schedule(schedule, torch_opt)
    # Through the warm-up and into the fall.
    lockstep(ours, flat, ref, torch_opt, steps=2 * PER_EPOCH, after_step=torch_sched.step)


def test_a_flat_table_of_rates_trains_exactly_as_a_constant_rate(tiny_splits):
    """A step schedule with gamma 1 goes through the table of rates with every entry lr."""
    cfg = TrainConfig(epochs=2, batch_size=128)
    flat = dataclasses.replace(cfg, schedule=Schedule("step", gamma=1.0))
    runs = [fit(ModelConfig(hidden=(32,)), c, tiny_splits).history for c in (cfg, flat)]
    plain, table = ([(r.train_loss, r.val_loss, r.val_acc) for r in h] for h in runs)
    assert plain == table


@pytest.mark.parametrize("kind", ["step", "cosine", "onecycle"])
def test_a_scheduled_fit_trains_and_differs_from_a_constant_rate(kind, tiny_splits):
    cfg = TrainConfig(epochs=2, batch_size=128)
    plain = fit(ModelConfig(hidden=(32,)), cfg, tiny_splits)
    moved = fit(
        ModelConfig(hidden=(32,)), dataclasses.replace(cfg, schedule=Schedule(kind)), tiny_splits
    )
    assert moved.outcome == "completed" and len(moved.history) == 2
    assert moved.history[-1].train_loss != plain.history[-1].train_loss


def test_an_unknown_schedule_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match="schedule: expected one of constant, step, cosine"):
        Schedule("linear")


def test_a_warm_up_as_long_as_the_run_is_a_value_error():
    with pytest.raises(ValueError, match="warmup_epochs: 4 is not shorter than the run's 4"):
        Schedule("cosine", warmup_epochs=4).rates(1.0, PER_EPOCH, EPOCHS)
