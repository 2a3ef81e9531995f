"""Benchmark: the "seconds" objective of two identical trials in one fresh process.

    python benchmarks/warm_timing.py [--epochs 2] [--train-limit 10000]

Runs ``search.run --objectives accuracy,seconds`` on a space whose every value is fixed, so
both trials of the study train the same configuration, in a fresh process: once as shipped
(an untimed warm-up of each configuration before its trial) and once with the warm-up turned
off, as before it existed. A process's first trial pays one-time costs (torch's first calls,
compiling the fused kernels); with the warm-up, they stay out of the recorded seconds. Last
line: ``identical trials, first/second seconds: X with the warm-up, Y without``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import optuna

from search.engine.datasets import default_data_dir

SPACE = """name = "twin"
[params]
layers = 2
units = 512
activation = "gelu"
loss = "cross_entropy"
optimizer = "adamw"
lr_factor = 1.0
schedule = "cosine"
warmup_epochs = 1
dropout = 0.2
batch_size = 128
"""
# Runs search.run in this process, with the warm-up replaced by nothing when asked.
RUNNER = """
import sys
import search.study.running.objective as objective
if sys.argv[1] == "off":
    objective.warm_up = lambda *args: None
from search.run import main
sys.exit(main(sys.argv[2:]))
"""


def seconds_of(folder: Path, warm: str, args: argparse.Namespace) -> list[float]:
    db = folder / f"{warm}.db"
    argv = [
        "--sampler", "random", "--space", str(folder / "twin.toml"), "--n-trials", "2",
        "--objectives", "accuracy,seconds", "--workers", "1", "--quiet",
        "--epochs", str(args.epochs), "--train-limit", str(args.train_limit),
        "--data-dir", args.data_dir, "--storage", f"sqlite:///{db}", "--study-name", "twin",
    ]  # fmt: skip
    subprocess.run([sys.executable, "-c", RUNNER, warm, *argv], check=True, capture_output=True)
    trials = optuna.load_study(study_name="twin", storage=f"sqlite:///{db}").trials
    return [t.values[1] for t in trials]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--train-limit", type=int, default=10000)
    p.add_argument("--data-dir", default=default_data_dir())
    args = p.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="warm-timing-"))
    (folder / "twin.toml").write_text(SPACE)
    ratios = {}
    for warm in ("on", "off"):
        first, second = seconds_of(folder, warm, args)
        ratios[warm] = first / second
        print(f"warm-up {warm}: first trial {first:.3f} s, second {second:.3f} s")
    print(
        f"identical trials, first/second seconds: {ratios['on']:.2f} with the warm-up, "
        f"{ratios['off']:.2f} without"
    )


if __name__ == "__main__":
    main()
