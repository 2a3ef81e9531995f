"""Benchmark: every single-objective sampler on the same budget, on the real MNIST.

    python benchmarks/sampler_shootout.py [--trials 30] [--max-epochs 5] [--train-limit 10000]
                                          [--seeds 1,2,3] [--samplers random,tpe,...]

Each sampler explores the default space (search/spaces/default.toml) with its default pruner;
``grid`` runs the reference's ofat design (its 15 points) for comparison. For each sampler the
table gives, over the seeds: the mean and the best validation accuracy of the best trial, the
mean test accuracy of those best trials, the trials pruned, and the total seconds. The last
line names the sampler with the best mean validation accuracy.
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

from search.engine.datasets import default_data_dir
from search.run import main as run_main
from search.study.space.samplers import DEFAULT_PRUNER, SAMPLERS
from search.study.storage.trials import final_metrics
from search.views.best import best_trial


def one(sampler: str, seed: int, args: argparse.Namespace, folder: Path) -> dict:
    db = folder / f"{sampler}-{seed}.db"
    argv = [
        "--sampler",
        sampler,
        "--seed",
        str(seed),
        "--max-epochs",
        str(args.max_epochs),
        "--train-limit",
        str(args.train_limit),
        "--data-dir",
        args.data_dir,
        "--storage",
        f"sqlite:///{db}",
        "--study-name",
        "s",
        "--quiet",
    ]
    if sampler != "grid":
        argv += ["--n-trials", str(args.trials)]
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # the per-run summary tables
        code = run_main(argv)
    if code != 0:
        raise SystemExit(f"{sampler} seed {seed} failed")
    seconds = time.perf_counter() - start
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{db}")
    top = best_trial(study)
    pruned = len(study.get_trials(states=(optuna.trial.TrialState.PRUNED,)))
    return {
        "val": top.values[0],
        "test": final_metrics(top).get("test_acc"),
        "pruned": pruned,
        "trials": len(study.get_trials()),
        "seconds": seconds,
    }


def main() -> None:
    singles = [s for s in SAMPLERS if s != "nsga2"]  # nsga2 is for several objectives
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=30)
    p.add_argument("--max-epochs", type=int, default=5)
    p.add_argument("--train-limit", type=int, default=10000)
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--samplers", default=",".join(singles))
    p.add_argument("--data-dir", default=default_data_dir())
    args = p.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    seeds = [int(s) for s in args.seeds.split(",")]
    print(
        f"{args.trials} trials, --max-epochs {args.max_epochs}, --train-limit "
        f"{args.train_limit}, seeds {seeds}"
    )
    header = (
        "sampler",
        "pruner",
        "mean best val",
        "best val",
        "mean test of best",
        "pruned",
        "trials",
        "seconds",
    )
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for sampler in args.samplers.split(","):
            runs = [one(sampler, seed, args, Path(tmp)) for seed in seeds]
            results[sampler] = statistics.mean(r["val"] for r in runs)
            print(
                " | ".join(
                    [
                        sampler,
                        DEFAULT_PRUNER[sampler],
                        f"{results[sampler]:.2%}",
                        f"{max(r['val'] for r in runs):.2%}",
                        f"{statistics.mean(r['test'] for r in runs):.2%}",
                        str(sum(r["pruned"] for r in runs)),
                        str(sum(r["trials"] for r in runs)),
                        f"{sum(r['seconds'] for r in runs):.0f}",
                    ]
                ),
                flush=True,
            )
    winner = max(results, key=results.get)
    print(f"best sampler: {winner} (mean best validation accuracy {results[winner]:.2%})")


if __name__ == "__main__":
    main()
