"""Benchmark: a sampler on the default space against the reference's ofat grid, same wall time.

    python benchmarks/search_vs_grid.py [--minutes 3] [--seeds 3] [--samplers tpe,random]

For each seed, the ofat grid (its 15 points at their real epochs) and each named sampler (the
default space, its default pruner) get ``--minutes`` of wall time on every core and the real
MNIST; trials still running at the deadline do not count. Each run's pick is its best trial by
validation accuracy; the table gives the test accuracy of that pick, per seed and as a mean
over seeds. Last line: ``search vs grid at M min: tpe X% vs grid Y% (mean of S seeds)``, for
the first sampler named.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import optuna
from timed_study import run_for  # beside this file

from search.engine.datasets import default_data_dir


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=3.0, help="wall time of each run")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--samplers", default="tpe,random")
    p.add_argument("--data-dir", default=default_data_dir())
    p.add_argument("--train-limit", help="for a quick check of this script only")
    args = p.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    samplers = [s for s in args.samplers.split(",") if s]
    contenders = ["grid", *samplers]
    folder = Path(tempfile.mkdtemp(prefix="search-vs-grid-"))
    print(f"{args.minutes:g} min per run, seeds 1-{args.seeds}, every core (log: {folder}/log)")
    print("run | seed | trials done | best val | its test | found after")
    print("--- | --- | --- | --- | --- | ---")
    tests: dict[str, list[float]] = {c: [] for c in contenders}
    for seed in range(1, args.seeds + 1):
        for name in contenders:
            argv = ["--sampler", name, "--seed", str(seed), "--data-dir", args.data_dir]
            if name != "grid":
                argv += ["--n-trials", "100000"]  # the wall time is the budget
            if args.train_limit:
                argv += ["--train-limit", args.train_limit]
            storage = f"sqlite:///{folder / f'{name}-{seed}.db'}"
            out = run_for(argv, args.minutes * 60, storage, "s", folder / "log")
            test = out.test if out.test is not None else 0.0  # nothing finished: scored as 0
            tests[name].append(test)
            found = "-" if out.found_after_s is None else f"{out.found_after_s:.0f} s"
            val = "-" if out.val is None else f"{out.val:.2%}"
            print(f"{name} | {seed} | {out.completed} | {val} | {test:.2%} | {found}", flush=True)
    print()
    print("run | mean test of its pick | spread over seeds")
    print("--- | --- | ---")
    for name in contenders:
        runs = tests[name]
        print(f"{name} | {statistics.fmean(runs):.2%} | {min(runs):.2%}-{max(runs):.2%}")
    lead = samplers[0] if samplers else "grid"
    print(
        f"search vs grid at {args.minutes:g} min: {lead} {statistics.fmean(tests[lead]):.2%} vs "
        f"grid {statistics.fmean(tests['grid']):.2%} (mean of {args.seeds} seeds)"
    )


if __name__ == "__main__":
    main()
