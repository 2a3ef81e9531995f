"""The GPU path: captured CUDA graphs, their eager fallback, and several workers on one GPU.

These run wherever CUDA exists and skip, with the reason, elsewhere. The arithmetic they rely
on (the device-side optimizer, the loss without host synchronisation) is also checked on the
CPU by tests/test_train.py and tests/test_fused.py, and GraphedStep's bookkeeping (warm-up,
capture, replays, fallback) by tests/test_graphs.py with a stand-in for the graph API.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import optuna
import pytest
import torch

from search.engine.config import LOSSES, ModelConfig, TrainConfig
from search.engine.data import DataConfig, load
from search.engine.optim import OPTIMIZERS
from search.engine.train import fit
from search.study.storage import records

from .helpers import check_exactly_once, run_workers

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device here: the GPU path needs one"
)


@pytest.fixture(scope="module")
def gpu_splits(tiny_root):
    return load(DataConfig(data_dir=str(tiny_root), val_size=200), torch.device("cuda"))


def _fit_both(gpu_splits, model_cfg: ModelConfig, **train):
    cfg = TrainConfig(epochs=2, batch_size=64, **train)
    graphed = fit(model_cfg, cfg, gpu_splits)
    eager = fit(model_cfg, replace(cfg, cuda_graph=False), gpu_splits)
    return graphed, eager


CASES = [
    *({"loss": loss} for loss in LOSSES),
    *({"optimizer": kind, "lr": 1e-3 if kind.startswith("adam") else 0.05} for kind in OPTIMIZERS),
    {"l1": 1e-5},
    {"weight_decay": 0.01},
]


@pytest.mark.parametrize(
    ("activation", "train"), list(itertools.product(["relu", "tanh"], CASES)), ids=str
)
def test_graphed_step_trains_exactly_like_the_eager_step(gpu_splits, activation, train):
    graphed, eager = _fit_both(gpu_splits, ModelConfig(activation=activation), **train)
    assert graphed.step == "fused+graph", graphed.graph_fallback
    assert eager.step == "fused"
    torch.testing.assert_close(
        torch.tensor([r.train_loss for r in graphed.history]),
        torch.tensor([r.train_loss for r in eager.history]),
        rtol=1e-4,
        atol=1e-5,
    )
    assert [r.val_acc for r in graphed.history] == pytest.approx(
        [r.val_acc for r in eager.history], abs=0.01
    )


def test_graphed_step_with_dropout_and_three_layers_learns(gpu_splits):
    result = fit(ModelConfig(hidden=(128, 64, 64), dropout=0.2), TrainConfig(epochs=3), gpu_splits)
    assert result.step == "fused+graph", result.graph_fallback
    assert result.history[-1].val_acc > 0.8


def test_an_activation_without_a_fused_step_falls_back_to_eager_autograd(gpu_splits):
    result = fit(ModelConfig(activation="gelu"), TrainConfig(epochs=1), gpu_splits)
    assert result.step == "autograd"
    assert result.outcome == "completed"


def test_two_workers_share_one_gpu_and_run_each_ofat_point_once(tiny_root, tmp_path):
    storage = f"sqlite:///{tmp_path / 'gpu.db'}"
    done = run_workers(tiny_root, storage, 2, "--device", "cuda")
    assert done.returncode == 0, done.stderr
    trials = check_exactly_once(storage)
    runs = records.Runs(optuna.load_study(study_name="mnist-ofat-e1-v200", storage=storage))
    runs = [runs.run(t) for t in trials]
    assert all(r["device"].startswith("cuda") for r in runs)
    assert {r["step"] for r in runs} <= {"fused+graph", "autograd"}
