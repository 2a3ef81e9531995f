"""Benchmark: the full 3^7 grid (2,187 trials, the reference's 82-hour estimate) with N workers.

    python benchmarks/full_grid.py [--workers 8] [--device auto] [--sample 100] [--extra "..."]

With ``--sample 0`` it runs the whole grid (``--sampler grid --design full``). With
``--sample K`` it times K grid points drawn at random (``--sampler random`` over the same
space: every draw is one of the 2,187 points) and extrapolates to the whole grid, saying so.
Fresh SQLite database each time. Prints trials per minute, the mean training seconds per trial,
the peak host memory of one worker and, on a GPU, each worker's peak GPU memory. The last line
is the grid's wall time.
"""

from __future__ import annotations

import argparse
import resource
import shlex
import tempfile

import optuna
from scaling import timed_run  # beside this file

from search.engine.datasets import default_data_dir
from search.study.storage import records

GRID_POINTS = 3**7


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--device", default="auto")
    p.add_argument("--sample", type=int, default=100, help="grid points to time; 0: all")
    p.add_argument("--data-dir", default=default_data_dir())
    p.add_argument("--extra", default="", help="more search.run options")
    args = p.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    extra = ["--design", "full", "--device", args.device, *shlex.split(args.extra)]
    sampler = "grid" if args.sample == 0 else "random"
    if args.sample:
        extra += ["--n-trials", str(args.sample)]
    with tempfile.TemporaryDirectory() as tmp:
        storage = f"sqlite:///{tmp}/grid.db"
        wall = timed_run(storage, args.data_dir, args.workers, extra, sampler)
        study = optuna.load_study(study_name="scaling", storage=storage)
        trials = study.get_trials()
    done = [t for t in trials if t.state.is_finished()]
    train_s = [t.user_attrs.get("seconds", 0.0) for t in done]
    runs = records.Runs(study)
    gpu = [runs.run(t)["peak_gpu_mib"] for t in done if "peak_gpu_mib" in runs.run(t)]
    host_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    steps = sorted({runs.run(t).get("step", "?") for t in done})
    print(
        f"{len(done)} trials with {args.workers} workers on {args.device}: {wall:.1f} s wall, "
        f"{len(done) / wall * 60:.1f} trials/min, {sum(train_s) / len(done):.2f} s per trial "
        f"(fit), steps {', '.join(steps)}"
    )
    print(
        f"peak memory per worker: host {host_mb:.0f} MB"
        + (f", GPU {max(gpu):.0f} MiB" if gpu else "")
    )
    if args.sample:
        print(
            f"full grid: {wall * GRID_POINTS / len(done) / 60:.1f} min, extrapolated from "
            f"{len(done)} random grid points ({wall:.1f} s) with {args.workers} workers"
        )
    else:
        print(
            f"full grid: {wall / 60:.1f} min measured, {len(done)} trials, {args.workers} workers"
        )


if __name__ == "__main__":
    main()
