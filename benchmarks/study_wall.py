"""Benchmark: the whole ofat study at its real epoch counts, from a fresh database.

    python benchmarks/study_wall.py [--workers 1,2] [--data-dir DIR] [--extra "--max-epochs 3"]

Runs ``python -m search.run --sampler grid`` (15 trials, 14 or 25 epochs each) once per worker
count and prints the wall time, trials per minute and the peak resident memory of one
process. The last line gives the fastest arrangement.
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import tempfile

import optuna
from scaling import timed_run  # beside this file

from search.engine.datasets import default_data_dir


def run(workers: int, data_dir: str, extra: list[str]) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        storage = f"sqlite:///{tmp}/s.db"
        wall = timed_run(storage, data_dir, workers, extra)
        done = optuna.load_study(study_name="scaling", storage=storage).get_trials(
            states=(optuna.trial.TrialState.COMPLETE,)
        )
    return wall, len(done)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", default="1,2")
    p.add_argument("--data-dir", default=default_data_dir())
    p.add_argument("--extra", default="", help="more search.run options, e.g. --max-epochs 3")
    args = p.parse_args()
    print(f"{os.cpu_count()} CPUs; ofat study, {args.extra or 'real epoch counts'}")
    best = None
    for n in (int(w) for w in args.workers.split(",")):
        wall, trials = run(n, args.data_dir, shlex.split(args.extra))
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(
            f"workers {n}: {wall:.1f} s wall, {trials} trials, {trials / wall * 60:.1f} "
            f"trials/min, peak {peak_mb:.0f} MB resident per process (largest so far)",
            flush=True,
        )
        if best is None or wall < best[1]:
            best = (n, wall, trials)
    n, wall, trials = best
    print(
        f"ofat study: {wall:.1f} s ({wall / 60:.2f} min) with {n} worker(s), "
        f"{trials / wall * 60:.1f} trials/min"
    )


if __name__ == "__main__":
    main()
