"""Benchmark: the same grid with 1, 2 and 4 local workers.

    python benchmarks/scaling.py [--workers 1,2,4] [--storage-url URL] [--extra "..."]

Each run is the ofat design (default ``--max-epochs 5``, all 55,000 images) on a fresh
database (SQLite by default; a PostgreSQL server URL with ``--storage-url``, one fresh database
per run). It prints trials per minute, the speed-up over one worker, and the storage time per
trial: the part of a trial's wall time spent outside training (Optuna and the database). The
last line is the speed-up of the most workers.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
import time
import uuid

import optuna
import sqlalchemy

from search.engine.datasets import default_data_dir


def fresh_storage(base: str | None, tmp: str) -> str:
    if base is None:
        return f"sqlite:///{tmp}/s-{uuid.uuid4().hex[:6]}.db"
    name = f"scaling_{uuid.uuid4().hex[:8]}"
    engine = sqlalchemy.create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as con:
        con.exec_driver_sql(f'CREATE DATABASE "{name}"')
    return sqlalchemy.engine.make_url(base).set(database=name).render_as_string(False)


def timed_run(
    storage: str, data_dir: str, workers: int, extra: list[str], sampler: str = "grid"
) -> float:
    """Wall seconds of ``python -m search.run --sampler S`` as study "scaling" in storage."""
    cmd = [
        sys.executable,
        "-m",
        "search.run",
        "--sampler",
        sampler,
        "--quiet",
        "--storage",
        storage,
        "--data-dir",
        data_dir,
        "--workers",
        str(workers),
        "--study-name",
        "scaling",
        *extra,
    ]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{shlex.join(cmd)} failed:\n{done.stderr}")
    return time.perf_counter() - start


def drop_storage(base: str | None, storage: str) -> None:
    if base is None:
        return  # the SQLite file goes with the temporary folder
    name = sqlalchemy.engine.make_url(storage).database
    engine = sqlalchemy.create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as con:
        con.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", default="1,2,4")
    p.add_argument("--storage-url", default=None)
    p.add_argument("--data-dir", default=default_data_dir())
    p.add_argument("--extra", default="--max-epochs 5")
    args = p.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print("workers | trials/min | speed-up | storage s/trial | wall s")
    print("--- | --- | --- | --- | ---")
    base_rate = None
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(w) for w in args.workers.split(",")):
            storage = fresh_storage(args.storage_url, tmp)
            wall = timed_run(storage, args.data_dir, n, shlex.split(args.extra))
            trials = optuna.load_study(study_name="scaling", storage=storage).get_trials()
            overhead = [
                (t.datetime_complete - t.datetime_start).total_seconds() - t.user_attrs["seconds"]
                for t in trials
            ]
            drop_storage(args.storage_url, storage)
            rate = len(trials) / wall * 60
            base_rate = base_rate or rate
            print(
                f"{n} | {rate:.1f} | {rate / base_rate:.2f}x | "
                f"{sum(overhead) / len(overhead):.3f} | {wall:.1f}",
                flush=True,
            )
    print(f"speed-up with {n} workers: {rate / base_rate:.2f}x ({rate:.1f} trials/min)")


if __name__ == "__main__":
    main()
