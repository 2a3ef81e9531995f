"""GraphedStep's bookkeeping, on any machine: warm-up, one capture, replays, eager fallback.

A stand-in for torch.cuda's graph API keeps CUDA's semantics on the CPU: capturing runs nothing
(every tensor the step writes is restored afterwards) and a replay runs the recorded step on
the static buffers. tests/test_gpu.py runs the real thing wherever CUDA exists.
"""

from __future__ import annotations

import contextlib

import pytest
import torch

from search.engine import graphs
from search.engine.config import ModelConfig
from search.engine.fused import FusedMLPStep
from search.engine.model import build_mlp
from search.engine.optim import FlatOptimizer
from search.engine.schedules import Schedule
from search.engine.train import train_one_epoch

BATCH, N = 32, 32 * 10 + 7  # ten full batches and a partial one


class FakeGraph:
    """Records the step captured under it; ``replay`` runs that step again."""

    fail_with: str | None = None

    def __init__(self) -> None:
        self.step = None

    def replay(self) -> None:
        opt = self.step.fused.opt
        steps = opt.steps  # a real replay runs no Python: the host-side count stays put
        self.step.static_loss.copy_(self.step.fused.step(self.step.xbuf, self.step.ybuf))
        opt.steps = steps


class FakeStream:
    def wait_stream(self, other: FakeStream) -> None:
        pass


def fake_graph_api(monkeypatch, graphed: list) -> None:
    @contextlib.contextmanager
    def capture(graph: FakeGraph):
        if FakeGraph.fail_with:
            raise RuntimeError(FakeGraph.fail_with)
        step = graphed[0]
        opt = step.fused.opt
        schedule = (opt.rate_index, opt.lr_t) if opt.rates is not None else ()
        state = (opt.flat, opt.grad, *opt.state, opt.step_t, *schedule)
        saved = [t.clone() for t in state]
        yield
        for t, s in zip(state, saved, strict=True):
            t.copy_(s)  # capturing runs nothing
        step.static_loss = step.static_loss.clone()
        graph.step = step

    monkeypatch.setattr(torch.cuda, "CUDAGraph", FakeGraph)
    monkeypatch.setattr(torch.cuda, "graph", capture)
    monkeypatch.setattr(torch.cuda, "Stream", lambda device=None: FakeStream())
    monkeypatch.setattr(torch.cuda, "stream", lambda s: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "current_stream", FakeStream)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: None)


def _train(step_factory, epochs: int = 2, rates: list[float] | None = None):
    torch.manual_seed(0)
    model = build_mlp(ModelConfig(hidden=(16,)))
    backend = None if rates is None else "torch"  # a schedule on the GPU's path
    opt = FlatOptimizer(list(model.parameters()), "adam", 1e-3, backend=backend, rates=rates)
    fused = FusedMLPStep(model, opt, "relu", "nll", 0.0, 0.0, BATCH)
    buffers = (torch.empty(BATCH, 784), torch.empty(BATCH, dtype=torch.int64))
    step = step_factory(fused, buffers)
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(N, 784, generator=gen), torch.randint(0, 10, (N,), generator=gen)
    losses = [train_one_epoch(model, step, BATCH, x, y, gen, buffers) for _ in range(epochs)]
    return step, opt, torch.cat(losses)


@pytest.mark.parametrize("fail", [None, "operation not permitted when stream is capturing"])
def test_a_graphed_step_trains_exactly_as_the_eager_step_and_falls_back_on_failure(
    monkeypatch, fail
):
    graphed: list = []
    fake_graph_api(monkeypatch, graphed)
    monkeypatch.setattr(FakeGraph, "fail_with", fail)

    def make(fused, buffers):
        graphed.append(graphs.GraphedStep(fused, buffers))
        return graphed[0]

    step, opt, losses = _train(make)
    _, eager_opt, eager_losses = _train(lambda fused, buffers: fused.step)
    torch.testing.assert_close(losses, eager_losses)
    torch.testing.assert_close(opt.flat, eager_opt.flat)
    assert opt.steps == eager_opt.steps == 2 * 11
    if fail:
        assert not step.captured and fail in step.fallback_reason
        assert step.replays == 0
    else:
        assert step.captured and step.fallback_reason is None
        assert step.eager_calls == graphs.WARMUP_STEPS
        assert step.replays == 2 * 10 - graphs.WARMUP_STEPS  # partial batches run eagerly


def test_a_graphed_step_follows_a_schedule_as_the_eager_step_does(monkeypatch):
    graphed: list = []
    fake_graph_api(monkeypatch, graphed)
    rates = Schedule("cosine", warmup_epochs=1).rates(1e-2, 11, 2)

    def make(fused, buffers):
        graphed.append(graphs.GraphedStep(fused, buffers))
        return graphed[0]

    step, opt, losses = _train(make, rates=rates)
    _, eager_opt, eager_losses = _train(lambda fused, buffers: fused.step, rates=rates)
    _, constant_opt, _ = _train(lambda fused, buffers: fused.step)
    assert step.captured and step.replays > 0
    torch.testing.assert_close(losses, eager_losses)
    torch.testing.assert_close(opt.flat, eager_opt.flat)
    assert int(opt.rate_index) == int(eager_opt.rate_index) == len(rates) - 1
    assert not torch.allclose(opt.flat, constant_opt.flat)  # the schedule did move the rate
