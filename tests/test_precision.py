"""bf16 products: the same training within bf16's rounding, chosen where the device is fast."""

from __future__ import annotations

import contextlib
import io
import subprocess
from dataclasses import replace
from pathlib import Path

import optuna
import pytest
import torch

from search.engine import precision as engine_precision
from search.engine.config import ModelConfig, TrainConfig
from search.engine.data import Splits
from search.engine.model import build_mlp
from search.engine.optim import FlatOptimizer
from search.engine.steps import make_step
from search.engine.train import fit
from search.study.storage import records
from search.task import Context

WIDE = ModelConfig(hidden=(256, 256))
LOSS_TOLERANCE = 0.02  # relative, per epoch: bf16 keeps 8 bits of mantissa in the products
GRAD_MARGIN = 1.25  # of PyTorch's own bf16 autocast's distance from the fp32 gradient


def splits(n: int = 1200) -> Splits:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n + 400, 784, generator=g)
    y = x[:, :10].argmax(1)
    return Splits(x[:n], y[:n], x[n : n + 200], y[n : n + 200], x[n + 200 :], y[n + 200 :])


@pytest.mark.parametrize(
    "model", [WIDE, replace(WIDE, activation="gelu")], ids=["fused-relu", "autograd-gelu"]
)
def test_a_bf16_run_follows_the_fp32_loss_curve_within_bf16s_rounding(model):
    cfg = TrainConfig(optimizer="adamw", lr=1e-3, epochs=2, batch_size=128, loss="cross_entropy")
    data = splits()
    fp32, bf16 = fit(model, cfg, data), fit(model, replace(cfg, precision="bf16"), data)
    assert fp32.step == bf16.step  # the same step, in both precisions
    for a, b in zip(fp32.history, bf16.history, strict=True):
        assert a.train_loss != b.train_loss  # the products did run in bf16
        assert abs(a.train_loss - b.train_loss) <= LOSS_TOLERANCE * a.train_loss


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(64, 784, generator=g), torch.randint(0, 10, (64,), generator=g)


def one_step_gradient(precision: str, activation: str) -> torch.Tensor:
    """The service's step's gradient of one batch (the fused step for ReLU)."""
    model_cfg = replace(WIDE, activation=activation)
    torch.manual_seed(0)
    model = build_mlp(model_cfg)
    cfg = TrainConfig(optimizer="sgd", lr=1e-9, batch_size=64, precision=precision)
    opt = FlatOptimizer(list(model.parameters()), "sgd", 1e-9)
    buffers = (torch.empty(64, 784), torch.empty(64, dtype=torch.int64))
    step, _ = make_step(model, opt, model_cfg, cfg, buffers)
    step(*batch())
    return torch.cat([g.flatten() for g in opt.grads])


def autocast_gradient(activation: str) -> torch.Tensor:
    """PyTorch's own bf16 gradient of the same model and batch: bf16's rounding, measured."""
    torch.manual_seed(0)
    model = build_mlp(replace(WIDE, activation=activation))
    x, y = batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(x)
    torch.nn.functional.nll_loss(torch.log_softmax(logits.float(), 1), y).backward()
    return torch.cat([p.grad.flatten() for p in model.parameters()])


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_a_bf16_gradient_is_the_fp32_one_within_bf16s_rounding(activation):
    fp32 = one_step_gradient("fp32", activation)
    bf16 = one_step_gradient("bf16", activation)
    rounding = (autocast_gradient(activation) - fp32).norm()  # what bf16 costs in PyTorch
    assert not torch.equal(fp32, bf16)
    assert (bf16 - fp32).norm() <= GRAD_MARGIN * rounding


@pytest.mark.parametrize(("forced", "chosen"), [("0", "fp32"), ("1", "bf16")])
def test_auto_picks_bf16_only_where_the_device_is_fast_at_it(forced, chosen, monkeypatch):
    monkeypatch.setenv(engine_precision.OVERRIDE_ENV, forced)
    assert engine_precision.resolve("auto", torch.device("cpu"))[0] == chosen
    assert engine_precision.resolve("fp32", torch.device("cpu"))[0] == "fp32"


def test_a_task_writes_no_device_checks_autocast_follows_the_precision():
    def logits_dtype(precision: str) -> torch.dtype:
        ctx = Context(seed=1, device=torch.device("cpu"), data_dir=Path("."), precision=precision)
        with ctx.autocast():
            return torch.nn.Linear(4, 2)(torch.randn(3, 4)).dtype

    assert logits_dtype("bf16") == torch.bfloat16 and logits_dtype("fp32") == torch.float32


def run(
    tiny_root: Path, db: Path, *extra: str, fast: str, monkeypatch: pytest.MonkeyPatch
) -> subprocess.CompletedProcess:
    """``search.run`` of a small space, in this process (forced bf16 is emulated, and slow, on
    most CPUs); its exit code and what it said, as a finished process's."""
    from search.run import main

    space = db.parent / "small.toml"
    space.write_text("[params]\nunits = [16, 32]\nbatch_size = [64, 128]\n")
    argv = ["--data-dir", str(tiny_root), "--storage", f"sqlite:///{db}", "--val-size", "200"]
    argv += ["--workers", "1", "--max-epochs", "1", "--study-name", "s", "--space", str(space)]
    argv += extra
    monkeypatch.setenv("SEARCH_FAST_BF16", fast)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


@pytest.mark.slow
@pytest.mark.parametrize(("fast", "chosen"), [("0", "fp32"), ("1", "bf16")])
def test_a_search_runs_auto_says_which_once_and_its_trials_record_it(
    fast, chosen, tiny_root, tmp_path, monkeypatch
):
    db = tmp_path / "s.db"
    done = run(
        tiny_root, db, "--sampler", "random", "--n-trials", "2", fast=fast, monkeypatch=monkeypatch
    )
    assert done.returncode == 0, done.stderr
    said = [line for line in done.stderr.splitlines() if line.startswith("precision auto")]
    assert len(said) == 1 and chosen in said[0]
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{db}")
    assert study.user_attrs["settings"]["precision"] == "auto"
    runs = records.Runs(study)
    assert {runs.run(t)["precision"] for t in study.trials} == {chosen}


@pytest.mark.slow
def test_the_reference_grid_stays_fp32_even_where_bf16_is_fast(tiny_root, tmp_path, monkeypatch):
    db = tmp_path / "s.db"
    assert run(tiny_root, db, "--n-trials", "1", fast="1", monkeypatch=monkeypatch).returncode == 0
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{db}")
    assert study.user_attrs["settings"]["precision"] == "fp32"
    assert records.Runs(study).run(study.trials[0])["precision"] == "fp32"


@pytest.mark.slow
def test_a_study_made_before_the_setting_resumes_as_fp32(tiny_root, tmp_path, monkeypatch):
    db = tmp_path / "s.db"
    first = run(
        tiny_root, db, "--sampler", "random", "--n-trials", "1", fast="1", monkeypatch=monkeypatch
    )
    assert first.returncode == 0, first.stderr
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{db}")
    old = {k: v for k, v in study.user_attrs["settings"].items() if k != "precision"}
    study.set_user_attr("settings", old)  # as a study made before the setting stored it
    again = run(
        tiny_root, db, "--sampler", "random", "--n-trials", "2", fast="1", monkeypatch=monkeypatch
    )
    assert again.returncode == 0, again.stderr
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{db}")
    assert [records.Runs(study).run(t)["precision"] for t in study.trials] == ["bf16", "fp32"]
