"""Helpers and constants shared by several test modules (fixtures live in tests/conftest.py).

What is here: synthetic MNIST-shaped data written as IDX files; the command lines, trial
queries and worker runs of the end-to-end tests; a child process bound by file modes even as
root, and a folder's snapshot; the README's quick-start commands; the SLURM grid that
docs/workers.md submits; and torch.optim's reference for the flat optimizer.
"""

from __future__ import annotations

import ctypes
import re
import struct
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import optuna
import torch
import torch.nn.functional as F

from search.study.storage import records
from tests import launch

if TYPE_CHECKING:
    from search.engine.optim import FlatOptimizer

ROOT = Path(__file__).resolve().parent.parent

# Synthetic MNIST-shaped data, written as real IDX files.


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file, as torchvision reads it (type 0x08, big-endian dims)."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def make_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """28x28 images a small MLP learns over a few epochs: each class lights its own faint 4-row
    band among heavy noise, so settings and epochs make a visible difference."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n)
    images = rng.integers(0, 200, size=(n, 28, 28))
    for i, y in enumerate(labels):
        row = (y * 24) // 10
        images[i, row : row + 4, :] += 70
    return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.uint8)


def make_dataset(
    root: Path, n_train: int = 1200, n_test: int = 300, folder: str = "MNIST"
) -> Path:
    """A data root holding ``folder/raw`` with synthetic digits; returns ``root``."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        images, labels = make_digits(n, seed)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root


# Runs of search.run and their trials.

TINY = ["--val-size", "200", "--quiet", "--workers", "1"]  # one process: tests see it all


def args(root: Path, db: Path, *extra: str) -> list[str]:
    """``search.run``'s arguments for the data at ``root`` and the SQLite file ``db``."""
    return ["--data-dir", str(root), "--storage", f"sqlite:///{db}", *TINY, *extra]


def load_trials(db: Path, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{db}").get_trials()


def completed_points(trials: list[optuna.trial.FrozenTrial]) -> list[str]:
    return sorted(t.user_attrs["point"] for t in trials if t.state.name == "COMPLETE")


def executions(study: optuna.Study) -> int:
    """How many times trials were run: one claim record per execution, even of one trial."""
    runs = records.Runs(study)
    return sum(len(runs.claims(t)) for t in study.get_trials())


def run_workers(
    root: Path | list[str], storage: str, n: int, *extra: str
) -> subprocess.CompletedProcess:
    """``search.run`` with ``n`` workers at 1 epoch, in a process of its own; ``root`` is a
    data root, or the data options themselves."""
    data = root if isinstance(root, list) else ["--data-dir", str(root), "--val-size", "200"]
    argv = [
        *data,
        "--storage",
        storage,
        "--quiet",
        "--max-epochs",
        "1",
        "--workers",
        str(n),
        *extra,
    ]
    return launch.run(
        [sys.executable, "-m", "search.run", *argv], capture_output=True, text=True, timeout=600
    )


def check_exactly_once(
    storage: str, name: str = "mnist-ofat-e1-v200"
) -> list[optuna.trial.FrozenTrial]:
    """Every point COMPLETE in one trial that ran once: one claim each, 15 in all."""
    study = optuna.load_study(study_name=name, storage=storage)
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 15
    assert len(set(completed_points(trials))) == 15
    assert [len(records.claims_of(study, t)) for t in trials] == [1] * 15
    return trials


def start_two_workers(root: Path, storage: str, env: dict | None = None) -> subprocess.Popen:
    """``search.run`` with 2 workers at 2 epochs, started in a session of its own."""
    argv = [
        "--data-dir",
        str(root),
        "--storage",
        storage,
        "--val-size",
        "200",
        "--quiet",
        "--max-epochs",
        "2",
        "--workers",
        "2",
    ]
    # A session of its own: a terminal's Ctrl-C reaches the whole group, parent and workers.
    return launch.Popen(
        [sys.executable, "-m", "search.run", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=env,
    )


# Processes bound by file modes, as any user is (root too), and what a folder holds.

PR_CAPBSET_DROP = 24  # from <linux/prctl.h>
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2  # from <linux/capability.h>


def without_root_powers() -> None:
    """In the child, before it runs python: root ignores file modes, so drop the capabilities
    that let it (from the bounding set, so the program run never gets them). It stays uid 0
    rather than becoming nobody: the interpreter may live in root's home, closed to others."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def tree(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its bytes (None for a folder), as root sees it."""
    return {
        str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes()
        for p in sorted(folder.rglob("*"))
    }


# The README's quick start, and the SLURM grid of docs/workers.md.


def quick_start_commands() -> list[str]:
    """The README's first two code blocks: the command that installs the project and runs the
    reference grid, and the test command."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"^```(\w*)\n(.*?)^```", text, re.S | re.M)
    return [script.strip() for _, script in blocks[:2]]


GRID_STUDY, GRID_TASKS = "grid", 4  # docs/workers.md's step 3 submits these
GRID_OPTIONS = ["--sampler", "grid", "--max-epochs", "1", "--train-limit", "2000"]


def submit_argv(study: str, tasks: int) -> list[str]:
    """``search.submit``'s arguments for ``tasks`` workers, 2 at a time (docs/workers.md's step
    3 is this with the grid's study and 4 tasks: tests/test_docs.py checks it)."""
    return ["slurm", "--study-name", study, "--tasks", str(tasks), "--parallel", "2"]


# torch.optim: the reference that the flat optimizer follows.


def torch_optimizer(
    kind: str, params: Iterable[torch.nn.Parameter], lr: float, wd: float
) -> torch.optim.Optimizer:
    """torch.optim's optimizer for one of ours, with our momentum and weight decay."""
    if kind == "adadelta":
        return torch.optim.Adadelta(params, lr=lr, weight_decay=wd)
    if kind in ("sgd", "nesterov"):
        return torch.optim.SGD(
            params, lr=lr, momentum=0.9, weight_decay=wd, nesterov=kind == "nesterov"
        )
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    return torch.optim.AdamW(params, lr=lr, weight_decay=wd)


def lockstep(
    ours: torch.nn.Module,
    flat: FlatOptimizer,
    ref: torch.nn.Module,
    torch_opt: torch.optim.Optimizer,
    steps: int,
    after_step: Callable[[], object] = lambda: None,
) -> None:
    """Train two copies of a model on one batch, ours and torch.optim's, and compare them."""
    x, y = torch.randn(32, 784), torch.randint(0, 10, (32,))
    for _ in range(steps):
        flat.zero_grad()
        F.cross_entropy(ours(x), y).backward()
        flat.step()
        torch_opt.zero_grad()
        F.cross_entropy(ref(x), y).backward()
        torch_opt.step()
        after_step()
    for a, b in zip(ours.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
