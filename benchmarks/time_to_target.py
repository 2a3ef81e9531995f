"""Benchmark: TPE on a space, then the final step; is the target test accuracy reached?

    python benchmarks/time_to_target.py [--target 0.986] [--minutes 30] [--seeds 3]
    python benchmarks/time_to_target.py --task examples/mnist_cnn.py --target 0.995

Searches the built-in MLP's default space (or ``--task``'s own space) with TPE and its default
pruner (Hyperband) for ``--minutes`` of wall time on every core, choosing by validation
accuracy only. Then ``search.final --top 1`` retrains
the best configuration with ``--seeds`` seeds on all 60,000 training images and reads the test
set once per model; that step is timed apart. "After N min" is when the search finished the
trial it chose. Last line: ``time to target: reached X% test (final, mean of S seeds) after N
min``, or ``not reached: best X% after M min``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
from timed_study import run_for  # beside this file

from search.engine.datasets import default_data_dir


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", type=float, default=0.986, help="test accuracy, a fraction")
    p.add_argument("--minutes", type=float, default=30.0, help="wall time of the search")
    p.add_argument("--seeds", type=int, default=3, help="seeds of the final step")
    p.add_argument("--sampler", default="tpe")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--task", help="a task file (default: the built-in MLP)")
    p.add_argument("--precision", help="search.run's --precision (default: its own)")
    p.add_argument("--data-dir", default=default_data_dir())
    p.add_argument("--keep", help="a folder to keep the study's database in")
    p.add_argument("--train-limit", help="for a quick check of this script only")
    p.add_argument("--epochs", help="for a quick check of this script only")
    args = p.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folder = Path(args.keep or tempfile.mkdtemp(prefix="time-to-target-"))
    folder.mkdir(parents=True, exist_ok=True)
    storage, name, log = f"sqlite:///{folder / 'study.db'}", f"ttt-{args.sampler}", folder / "log"
    argv = ["--sampler", args.sampler, "--seed", str(args.seed), "--data-dir", args.data_dir]
    argv += ["--task", args.task] if args.task else []
    argv += ["--precision", args.precision] if args.precision else []
    argv += ["--n-trials", "100000"]  # the wall time is the budget
    for flag in ("train_limit", "epochs"):
        if getattr(args, flag):
            argv += [f"--{flag.replace('_', '-')}", getattr(args, flag)]
    what = args.task or "the default space"
    print(f"search: {args.sampler} on {what} for {args.minutes:g} min (log: {log})")
    found = run_for(argv, args.minutes * 60, storage, name, log)
    if found.best is None:
        print(f"not reached: no trial finished in {args.minutes:g} min")
        return
    # A task's search reads no test set (its final step does): its test figure is "-".
    test = "-" if found.test is None else f"{found.test:.2%}"
    print(
        f"search: {found.completed} trials finished in {found.wall_s / 60:.1f} min; the best "
        f"by validation, trial {found.best.number} (val {found.val:.2%}, test {test}),"
        f" finished after {found.found_after_s / 60:.1f} min"
    )
    print("  " + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in found.best.params.items()))  # fmt: skip
    start = time.perf_counter()
    final = [sys.executable, "-m", "search.final", "--storage", storage, "--study-name", name]
    final += ["--top", "1", "--seeds", str(args.seeds), "--data-dir", args.data_dir]
    with open(log, "a") as out:
        subprocess.run(final, stdout=out, stderr=out, check=True)
    final_s = time.perf_counter() - start
    record = optuna.load_study(study_name=name, storage=storage).user_attrs["final"]
    row, metric = record["configs"][0], record["metric"]
    mean, std = row["mean"][metric], row["std"][metric] or 0.0
    accs = " ".join(f"{a:.2%}" for a in row["metrics"][metric])
    print(
        f"final: trial {row['trial']} on all training images, {args.seeds} seeds: {metric} "
        f"{mean:.2%} ± {std:.2%} ({accs}); {final_s / 60:.1f} min"
    )
    minutes = found.found_after_s / 60
    if mean >= args.target:
        print(
            f"time to target: reached {mean:.2%} test (final, mean of {args.seeds} "
            f"seeds) after {minutes:.0f} min"
        )
    else:
        print(f"not reached: best {mean:.2%} after {args.minutes:g} min")


if __name__ == "__main__":
    main()
