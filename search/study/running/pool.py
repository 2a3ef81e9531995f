"""Local worker processes: ``search.run --workers N`` runs N workers on this machine.

Each worker is a process with cores/N torch threads (and, with several GPUs, a GPU of its own),
forked from a server that imported torch and the worker's modules once (``worker_context``).
Between rounds the parent fails the trials of workers that died (SIGKILL, out of
memory) and requeues failed grid points that have retries left.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import replace

import optuna

from search import signals
from search.engine.device import split_devices
from search.errors import SearchError, Terminated, exit_code_of, one_line
from search.study.running import runner
from search.study.running.workers import ObserverFactory, WorkerSpec, work

POLL_S = 1.0  # how often the parent redraws the progress of its workers
INTERRUPT_GRACE_S = 5.0  # how long the parent waits for workers to stop on their own
# What the fork server imports before it forks any worker: torch, Optuna and the study layer,
# seconds of imports that each spawned worker paid again.
PRELOAD = ["search.study.running.pool"]


def worker_context() -> multiprocessing.context.BaseContext:
    """How worker processes start: forked from a fork server that imported ``PRELOAD`` once,
    where the platform has one (Linux, macOS), else spawned (Windows). The server forks before
    any thread or storage connection of a run exists, and each worker sets up its own. The
    server lives as long as the process that started it, and its workers write to the standard
    output and error that process had when it started the server."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def adopt_environment(env: dict[str, str]) -> None:
    """Take the parent's environment as it is now: a forked worker starts with its server's,
    from when the server started (a long-lived parent may have changed its own since)."""
    os.environ.clear()
    os.environ.update(env)


def default_workers(device_type: str, trials: int) -> int:
    """One single-thread worker per core on the CPU when there are more trials than cores:
    two 1-thread trials at once beat one 2-thread trial on a small MLP (README, Speed).
    A GPU, or a study shorter than that, gets one worker."""
    cores = os.cpu_count() or 1
    return cores if device_type == "cpu" and trials > cores else 1


def _entry(spec: WorkerSpec, observe: ObserverFactory | None, env: dict[str, str]) -> None:
    adopt_environment(env)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    signals.listening()
    try:
        work(spec, observe)
    except KeyboardInterrupt as stop:
        sys.exit(exit_code_of(stop))
    except SearchError as e:
        print(f"[worker {spec.host.name}] error: {e}", file=sys.stderr, flush=True)
        sys.exit(e.exit_code)
    except Exception as e:  # noqa: BLE001 - a worker's death is one line, never a traceback
        print(f"[worker {spec.host.name}] error: {one_line(e)}", file=sys.stderr, flush=True)
        sys.exit(1)


def run_local_workers(
    spec: WorkerSpec, n: int, progress: Callable[[], None], observe: ObserverFactory | None
) -> int:
    """Start n worker processes on this machine, wait for them; Ctrl-C stops them all."""
    threads = max(1, (os.cpu_count() or 1) // n)
    ctx, env = worker_context(), dict(os.environ)
    procs = [
        ctx.Process(
            target=_entry,
            args=(
                replace(
                    spec, host=replace(spec.host, index=i, name=str(i), device=d, threads=threads)
                ),
                observe,
                env,
            ),
            daemon=False,
        )
        for i, d in enumerate(split_devices(spec.host.device, n))
    ]
    for p in procs:
        p.start()
    try:
        while sum([p.is_alive() for p in procs]):  # every one polled, so the dead are reaped
            progress()
            signals.wait(POLL_S)
    except KeyboardInterrupt as stop:
        # A terminal's Ctrl-C reaches the workers too; a kill -INT of this process alone does
        # not, so whoever is still running after a grace period is told. SIGTERM (docker stop,
        # Kubernetes) reaches this process alone, and its sender waits only seconds: pass it on
        # at once. The workers mark their trials FAIL "interrupted" either way.
        forward = signal.SIGTERM if isinstance(stop, Terminated) else signal.SIGINT
        with signals.deferred():  # stopping the workers: a second signal waits for it
            if forward == signal.SIGINT:
                for p in procs:
                    p.join(timeout=INTERRUPT_GRACE_S)
            for p in procs:
                if p.is_alive():
                    os.kill(p.pid, forward)
            for p in procs:
                p.join()
        raise
    progress()
    return max((p.exitcode or 0) for p in procs)


def run_in_workers(
    study: optuna.Study,
    spec: WorkerSpec,
    n: int,
    progress: Callable[[], None],
    observe: ObserverFactory | None = None,
) -> int:
    """n local workers, in rounds until no grid point that died with its worker is left;
    returns the highest exit code of the last round. A worker that ended in an error (the
    stop on repeated failures among them) ends the rounds: another would fail the same way."""
    code = 0
    for _ in range(spec.runner.max_retries + 1):
        code = run_local_workers(spec, n, progress, observe)
        if code or not spec.space.is_grid or not runner.recover(study, spec.space, spec.runner):
            break
    return code
