"""Benchmark: the runner's own cost per trial on the full 3^7 grid, short queue or all of it.

    python benchmarks/queue_cost.py [--trials 200] [--storage-url URL]

An objective that trains nothing finishes each trial at once, so the wall time per trial is
the runner's: claiming a WAITING trial, recording its owner and result, and topping up the
queue. It runs the first N trials of the 2,187-point grid twice, once with the runner's
default queue window and once with every point queued up front (as before the window), on a
fresh SQLite database (or a PostgreSQL server URL, one fresh database per run). The last line
is the default's milliseconds per trial.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import optuna
from optuna.trial import TrialState
from scaling import drop_storage, fresh_storage  # beside this file

from search.study.queue import claims
from search.study.running import runner
from search.study.running.budget import RunnerConfig
from search.study.running.runner import Outcome
from search.study.space.spacefile import design
from search.study.storage.storage import open_storage


def per_trial_ms(storage: str, trials: int, window: int | None) -> float:
    study = optuna.create_study(storage=open_storage(storage), direction="maximize")
    space = design("full").as_grid("benchmark")
    cfg = RunnerConfig(n_trials=trials, queue_window=window)
    claims.enqueue_missing(study, space, cfg.max_retries, cfg.queue_window)
    start = time.perf_counter()
    ran = runner.run(study, space, lambda trial: Outcome(TrialState.COMPLETE, [0.5]), cfg)
    return (time.perf_counter() - start) / ran * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=200)
    p.add_argument("--storage-url", default=None)
    args = p.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, window in (("all 2,187 queued", None), ("default", claims.QUEUE_WINDOW)):
            storage = fresh_storage(args.storage_url, tmp)
            results[label] = per_trial_ms(storage, args.trials, window)
            drop_storage(args.storage_url, storage)
            print(f"{label} (window {window}): {results[label]:.1f} ms per trial", flush=True)
    print(
        f"runner cost on the full grid: {results['default']:.1f} ms per trial with a "
        f"{claims.QUEUE_WINDOW}-point queue, {results['all 2,187 queued']:.1f} ms with all queued"
    )


if __name__ == "__main__":
    main()
