"""Submit workers for a study to a cluster: a SLURM job array whose every task is a worker.

    python -m search.submit slurm --study-name NAME --tasks N [--parallel M]
        [--gpus-per-task G] [--cpus-per-task C] [--time HH:MM:SS] [--python PATH]
        [--log-dir DIR] [--dry-run] [-- SEARCH.RUN OPTIONS]
(the database URL from --storage or $SEARCH_STORAGE; the tasks get it through their
environment, never on a command line). A missing study is made first from the options after
``--``, exactly as ``python -m search.run OPTIONS --study-name NAME --create-only`` makes it;
without them, the study must exist. Each task runs ``python -m search.worker`` with this
interpreter (or --python) in this folder, and its output goes to ``slurm-JOB_TASK.out`` in
``slurm/`` of the study's artifact folder (``artifacts/`` beside an SQLite file, else
``study_db/artifacts`` here), or in ``--log-dir``: made before submitting, named in the line
that says the job was submitted. ``--dry-run`` prints the batch script and touches neither the
database, nor SLURM, nor any folder.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from search.cli import Parser, guarded, positive_int
from search.errors import SearchError, StorageError
from search.study.running.slurm import LOG_NAME, STUDY_ENV, SlurmJob, render, sbatch, sbatch_path
from search.study.storage.sqlite_files import is_new_sqlite
from search.study.storage.storage import (
    STORAGE_ENV,
    artifact_dir_for,
    check_writable_folder,
    display_url,
    missing_study,
    open_storage,
)

ENGINES = ("slurm",)


def build_parser() -> Parser:
    p = Parser(
        prog="python -m search.submit",
        description=__doc__.splitlines()[0],
        examples=[
            "python -m search.submit slurm --study-name grid --tasks 4 --parallel 2 "
            "-- --sampler grid --max-epochs 1",
            "python -m search.submit slurm --study-name mnist-full --tasks 32 --parallel 8 "
            "--gpus-per-task 1 --time 08:00:00",
            "python -m search.submit slurm --study-name mnist-full --tasks 8 --dry-run",
        ],
    )
    p.add_argument("engine", choices=ENGINES, help="where the workers run")
    p.add_argument("--study-name", required=True)
    p.add_argument("--storage", default=None, help=f"default: ${STORAGE_ENV}")
    p.add_argument("--tasks", type=positive_int, required=True, help="workers in all")
    p.add_argument("--parallel", type=positive_int, default=None, help="at once; default all")
    p.add_argument("--gpus-per-task", type=int, choices=range(0, 17), default=0, metavar="G")
    p.add_argument("--cpus-per-task", type=positive_int, default=1, help="and torch threads")
    p.add_argument("--time", default=SlurmJob.time, help="each task's limit, HH:MM:SS")
    p.add_argument("--python", default=sys.executable, help="default: this interpreter")
    p.add_argument(
        "--log-dir",
        help="the tasks' logs (slurm-JOB_TASK.out); default: slurm/ in the study's artifact "
        "folder (artifacts/ beside an SQLite file, else study_db/artifacts)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the script, submit nothing")
    return p


def create_command(run_options: list[str], study_name: str) -> list[str]:
    """``search.run``'s command that makes the study (the URL stays in the environment)."""
    return [sys.executable, "-m", "search.run", *run_options, "--study-name", study_name,
            "--create-only", "--quiet"]  # fmt: skip


def ensure_study(storage: str, study_name: str, run_options: list[str]) -> None:
    """The study, made from ``run_options`` if it is missing; without them it must exist,
    since its space and settings are ``search.run``'s options."""
    if is_new_sqlite(storage) is not None:
        missing: str | None = "no database there yet"
    else:
        missing = missing_study(open_storage(storage, must_exist=True, writes=False), study_name)
    if not missing:
        return
    if not run_options:
        raise StorageError(
            f"--study-name: {missing} in {display_url(storage)}; give search.run's options "
            f"after --, or make it first with python -m search.run --study-name "
            f"{shlex.quote(study_name)} ... --create-only"
        )
    done = subprocess.run(
        create_command(run_options, study_name),
        env={**os.environ, STORAGE_ENV: storage},
        capture_output=True,
        text=True,
    )
    if done.returncode:
        said = [line for line in done.stderr.splitlines() if line.strip()]
        error = SearchError(said[-1] if said else f"search.run exited {done.returncode}")
        error.exit_code = done.returncode
        raise error


def log_folder(given: str | None, storage: str | None) -> Path:
    """Where the tasks' logs go: ``--log-dir``, else ``slurm/`` in the artifact folder the
    study's workers use; absolute, so that the line that says where is true anywhere."""
    if given:
        return Path(given).absolute()
    try:
        artifacts = artifact_dir_for(storage or "")
    except Exception:  # noqa: BLE001 - a malformed URL: ensure_study says so in one line
        artifacts = Path("study_db") / "artifacts"
    return (artifacts / "slurm").absolute()


def dry_run(job: SlurmJob, study_name: str) -> int:
    print(render(job), end="")
    command = shlex.join(["sbatch", "--parsable", *job.options()])
    print(f"dry run: {STUDY_ENV}={shlex.quote(study_name)} {command} < script", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    argv, run_options = argv[:cut], argv[cut + 1 :]  # after --: search.run's, for a new study
    p = build_parser()
    args = p.parse_args(argv)
    storage = args.storage or os.environ.get(STORAGE_ENV)
    if not storage and not args.dry_run:
        p.error(f"no storage: give --storage URL or set ${STORAGE_ENV} (the tasks read it)")

    def submit() -> int:
        logs = log_folder(args.log_dir, storage)
        job = SlurmJob(
            tasks=args.tasks,
            parallel=min(args.parallel or args.tasks, args.tasks),
            time=args.time,
            cpus_per_task=args.cpus_per_task,
            gpus_per_task=args.gpus_per_task,
            python=args.python,
            log_dir=str(logs),
        )
        if args.dry_run:
            return dry_run(job, args.study_name)
        sbatch_path()  # a machine without SLURM says so before the database is opened
        check_writable_folder(logs, "--log-dir")  # makes nothing: a refusal leaves no study
        ensure_study(storage, args.study_name, run_options)
        if storage.startswith("sqlite"):
            print(
                "note: SQLite is for tasks on this machine only; a cluster needs PostgreSQL",
                file=sys.stderr,
            )
        logs.mkdir(parents=True, exist_ok=True)  # SLURM makes no folders: a task would fail
        env = {**os.environ, STORAGE_ENV: storage, STUDY_ENV: args.study_name}
        job_id = sbatch(job, render(job), env)
        log = logs / LOG_NAME.replace("%A", job_id).replace("%a", "N")
        print(
            f"submitted job array {job_id}: {job.tasks} workers ({job.parallel} at a time) on "
            f"{args.study_name} in {display_url(storage)}; watch with squeue -j {job_id}; "
            f"logs in {log}"
        )
        return 0

    return guarded(submit, args.debug)


if __name__ == "__main__":
    sys.exit(main())
