"""Benchmark: a real grid while workers are killed at random; is anything lost or run twice?

    python benchmarks/chaos.py --storage sqlite|postgresql [--workers 4] [--minutes 3]

Queues a grid of short trials (the real MNIST, 1 epoch on 1,000 images; ``--points`` points)
and keeps ``--workers`` ``search.worker`` processes on it. Every few seconds one of them (one
that has started), at random, gets SIGKILL, SIGTERM or SIGINT, and a new one starts in its
place. After
``--minutes`` the killing stops and one last worker finishes the grid. Then, from the trials'
claim records: every point must be COMPLETE exactly once (a point without one is lost), no
point may have run twice (two completions, or a completed trial claimed twice), and no worker
may have printed a traceback. PostgreSQL comes from ``$SEARCH_TEST_POSTGRES_URL`` (a fresh
database is made and dropped). Last line: ``chaos: N points, K kills, L lost, D duplicated,
T tracebacks (STORAGE, W workers, M min)``.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import optuna
import sqlalchemy

from search.engine.datasets import default_data_dir
from search.study.storage import records

KILLS = (signal.SIGKILL, signal.SIGTERM, signal.SIGINT)
# A worker is signalled only once started: a Ctrl-C while Python itself is still importing
# modules prints Python's own KeyboardInterrupt traceback, before any code of ours runs.
STARTED_S = 6.0
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def fresh_storage(kind: str, folder: Path) -> tuple[str, object]:
    """A new, empty database and how to drop it."""
    if kind == "sqlite":
        return f"sqlite:///{folder / 'chaos.db'}", lambda: None
    admin_url = os.environ.get("SEARCH_TEST_POSTGRES_URL", PG_DEFAULT)
    name = f"chaos_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as con:
        con.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sqlalchemy.engine.make_url(admin_url).set(database=name)

    def drop() -> None:
        with admin.connect() as con:
            con.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return url.render_as_string(hide_password=False), drop


def start_worker(storage: str, data_dir: str, folder: Path, n: int) -> subprocess.Popen:
    log = open(folder / f"worker-{n}.log", "w")  # noqa: SIM115 - closed with the process
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SEARCH_STORAGE": storage}
    command = [sys.executable, "-m", "search.worker", "--study-name", "chaos"]
    command += ["--data-dir", data_dir, "--artifact-dir", str(folder / "artifacts")]
    return subprocess.Popen(
        command,
        stdout=log,
        stderr=log,
        env=env,
        # A shell's background job inherits SIGINT ignored; each worker must hear it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def check(storage: str, folder: Path) -> tuple[int, int, int, int]:
    """(points, lost, duplicated, tracebacks) from the trials and the workers' logs."""
    study = optuna.load_study(study_name="chaos", storage=storage)
    trials = study.get_trials()
    runs = records.Runs(study)
    points = {t.user_attrs["point"] for t in trials}
    done = Counter(t.user_attrs["point"] for t in trials if t.state.name == "COMPLETE")
    lost = sum(1 for p in points if done[p] == 0)
    for p in sorted(p for p in points if done[p] == 0):  # say what became of each lost point
        runs = [t for t in trials if t.user_attrs["point"] == p]
        print(
            f"lost {p}: "
            + "; ".join(
                f"trial {t.number} {t.state.name} {t.user_attrs.get('fail_reason', '')}".strip()
                + f" (claims: {len(runs.claims(t))})"
                for t in runs
            )
        )
    twice = {p for p, n in done.items() if n > 1}
    twice |= {
        t.user_attrs["point"]
        for t in trials
        if t.state.name == "COMPLETE" and len(runs.claims(t)) > 1
    }
    tracebacks = sum(p.read_text().count("Traceback") for p in folder.glob("worker-*.log"))
    return len(points), lost, len(twice), tracebacks


def unleash(
    args: argparse.Namespace, storage: str, folder: Path, rng: random.Random
) -> tuple[Counter, int, bool]:
    """Keep ``args.workers`` workers on the study and signal one at random every few seconds,
    for ``args.minutes`` or until the grid is done; then let the survivors and one last worker
    finish. Returns (kills by signal, workers started, whether the grid ended the chaos)."""
    workers: list[subprocess.Popen] = []
    born: dict[subprocess.Popen, float] = {}
    stopped: set[subprocess.Popen] = set()  # signalled by us: its exit code says nothing

    def spawn() -> subprocess.Popen:
        worker = start_worker(storage, args.data_dir, folder, len(born))
        born[worker] = time.monotonic()
        return worker

    kills: Counter = Counter()
    workers = [spawn() for _ in range(args.workers)]
    end = time.monotonic() + args.minutes * 60
    finished = False  # a worker that exits 0 by itself found no trial left: the grid is done
    while time.monotonic() < end and not finished:
        time.sleep(rng.uniform(2.0, 8.0))
        finished = any(w.poll() == 0 and w not in stopped for w in workers)
        workers = [w for w in workers if w.poll() is None]
        ready = [w for w in workers if time.monotonic() - born[w] >= STARTED_S]
        if ready and not finished:
            victim, how = rng.choice(ready), rng.choice(KILLS)
            victim.send_signal(how)
            stopped.add(victim)
            kills[how.name] += 1
        if not finished:
            workers += [spawn() for _ in range(args.workers - len(workers))]
    for w in workers:  # the chaos is over: the survivors finish, one more mops up
        w.wait()
    spawn().wait()
    return kills, len(born), finished


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--storage", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--minutes", type=float, default=3.0)
    p.add_argument("--points", type=int, default=600)
    p.add_argument("--seed", type=int, default=0, help="of the kills: which worker, when, how")
    p.add_argument("--data-dir", default=default_data_dir())
    args = p.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folder = Path(tempfile.mkdtemp(prefix="chaos-"))
    storage, drop = fresh_storage(args.storage, folder)
    units = ", ".join(str(8 + i) for i in range(args.points))
    space = folder / "chaos.toml"
    space.write_text(f'name = "chaos"\n[params]\nunits = [{units}]\n')
    create = [sys.executable, "-m", "search.run", "--sampler", "grid", "--space", str(space)]
    create += ["--max-epochs", "1", "--train-limit", "1000", "--study-name", "chaos"]
    create += ["--data-dir", args.data_dir, "--create-only", "--quiet"]
    subprocess.run(create, check=True, env={**os.environ, "SEARCH_STORAGE": storage})
    print(f"{args.points} points, {args.workers} workers on {args.storage}; logs in {folder}")
    kills, started, finished = unleash(args, storage, folder, random.Random(args.seed))
    points, lost, twice, tracebacks = check(storage, folder)
    if lost or twice:
        print(f"kept for a look: {storage}")
    else:
        drop()
    print(
        f"kills: {dict(kills)}; {started} workers started; chaos ended "
        + ("when the grid was done" if finished else f"after {args.minutes:g} min")
    )
    print(
        f"chaos: {points} points, {sum(kills.values())} kills, {lost} lost, {twice} duplicated, "
        f"{tracebacks} tracebacks ({args.storage}, {args.workers} workers, {args.minutes:g} min)"
    )


if __name__ == "__main__":
    main()
