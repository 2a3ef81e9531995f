"""Benchmark: what the service costs a task's epoch, against the same loop run by hand.

    python benchmarks/task_overhead.py [--epochs 3] [--repeats 3] [--train-limit N]

The ``examples/mnist_cnn.py`` task trains one configuration (16 and 32 channels, 128 hidden,
dropout 0.3, AdamW with one-cycle, batch 128) on the MNIST copy, alternately:
- by hand: its ``train`` called in this process with a context that records nothing;
- through the service: one trial of a study (``python -m search.run --task ... --workers 1``,
  in this process), with every epoch's report in the database, a checkpoint every epoch, the
  heartbeat thread and the trial's records; timed from the trial's start to its end.
Both train on the same data with the same seed, so they run the same arithmetic. The database
and checkpoints go to a temporary folder. Last line: ``task overhead: X% per epoch (service A
s, by hand B s)``, each the median over the repeats of the seconds per epoch.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import tempfile
import time
from pathlib import Path

import optuna
import torch

from search.engine.datasets import default_data_dir
from search.run import main as run_main
from search.task import Context, DataContext, seed_all
from search.tasks.loading import load_task

ROOT = Path(__file__).resolve().parent.parent
TASK = ROOT / "examples" / "mnist_cnn.py"
POINT = {"channels": 16, "hidden": 128, "dropout": 0.3, "lr": 0.003, "weight_decay": 1e-3}


def by_hand(epochs: int, data_dir: str, train_limit: int | None, data: object) -> float:
    """Seconds of ``train`` run in this process, recording nothing."""
    task = load_task(str(TASK))
    ctx = Context(
        seed=1,
        device=torch.device("cpu"),
        data_dir=Path(data_dir),
        train_limit=train_limit,
        data=data,
        epochs=epochs,
    )
    seed_all(1)
    start = time.perf_counter()
    task.train({**POINT, "batch_size": 128, "epochs": epochs}, ctx)
    return time.perf_counter() - start


def through_the_service(epochs: int, data_dir: str, train_limit: int | None, tmp: Path, n: int):
    """Seconds of one trial of a study (its start to its end, as the study recorded them)."""
    space = tmp / "point.toml"
    lines = [f"{k} = {v!r}" for k, v in {**POINT, "batch_size": 128, "epochs": epochs}.items()]
    space.write_text("[params]\n" + "\n".join(lines) + '\n[objective]\nmetric = "val_acc"\n'
                     'direction = "maximize"\n')  # fmt: skip
    storage = f"sqlite:///{tmp / 'study.db'}"
    argv = ["--task", str(TASK), "--sampler", "grid", "--space", str(space), "--quiet"]
    argv += ["--storage", storage, "--study-name", f"run-{n}", "--workers", "1"]
    argv += ["--data-dir", data_dir, "--artifact-dir", str(tmp / "artifacts")]
    argv += ["--train-limit", str(train_limit)] if train_limit else []
    with contextlib.redirect_stdout(io.StringIO()):  # the study's summary: not this script's
        assert run_main(argv) == 0
    (trial,) = optuna.load_study(study_name=f"run-{n}", storage=storage).trials
    return (trial.datetime_complete - trial.datetime_start).total_seconds()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--train-limit", type=int, default=None, help="a quick check of the script")
    p.add_argument("--data-dir", default=default_data_dir())
    args = p.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    task = load_task(str(TASK))
    data_ctx = DataContext(seed=1, device=torch.device("cpu"), data_dir=Path(args.data_dir),
                           train_limit=args.train_limit)  # fmt: skip
    data = task.load_data(data_ctx)
    hand, service = [], []
    with tempfile.TemporaryDirectory(prefix="task-overhead-") as tmp:
        by_hand(1, args.data_dir, args.train_limit, data)  # torch's first calls, untimed
        for n in range(args.repeats):  # alternated, so a slow spell of the machine hits both
            hand.append(by_hand(args.epochs, args.data_dir, args.train_limit, data) / args.epochs)
            seconds = through_the_service(args.epochs, args.data_dir, args.train_limit,
                                          Path(tmp), n)  # fmt: skip
            service.append(seconds / args.epochs)
            print(f"repeat {n + 1}: by hand {hand[-1]:.2f} s/epoch, service {service[-1]:.2f}")
    a, b = statistics.median(service), statistics.median(hand)
    print(f"task overhead: {(a - b) / b:+.1%} per epoch (service {a:.2f} s, by hand {b:.2f} s)")


if __name__ == "__main__":
    main()
