"""SLURM: a job array whose every task runs ``python -m search.worker`` on one study.

The batch script's text lives here, once: ``deploy/slurm/worker.sbatch`` is its default
rendering (a test keeps the two equal), and ``search.submit`` renders it with a job's settings
and hands it to ``sbatch`` on stdin. The storage URL reaches the tasks through the environment
only (``SEARCH_STORAGE``, exported by sbatch's ``--export=ALL``): never a command line, never
the script's text, which SLURM keeps with the job (``scontrol write batch_script``).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass

from search.errors import SearchError, UsageError

STUDY_ENV = "SEARCH_STUDY"  # the study's name, for the tasks
LOG_NAME = "slurm-%A_%a.out"  # each task's log: the job array's id and the task's
SBATCH_TIMEOUT_S = 120  # sbatch gives up on an unreachable controller well before this
# SLURM's time formats: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS.
TIME_FORMAT = re.compile(r"\d+(:\d{1,2}){0,2}|\d+-\d{1,2}(:\d{1,2}){0,2}")

HEAD = """\
#!/bin/bash
# One search worker per array task, all on one study. `python -m search.submit slurm` fills
# this in and submits it; by hand (the URL and the study come from the environment):
#   export SEARCH_STORAGE=postgresql+psycopg://user@db-host/search   # password: PGPASSWORD
#   SEARCH_STUDY=mnist-full sbatch --array=0-31%8 deploy/slurm/worker.sbatch
# Each task's log is slurm-JOB_TASK.out in the folder sbatch ran in (search.submit puts them
# beside the study's artifacts instead: sbatch --output=DIR/slurm-%A_%a.out, DIR made first).
# Each task claims the study's trials until none is left, then exits 0; a task that starts
# on a finished study exits 0 at once. A stopped task (the time limit, preemption, scancel)
# marks its running trial FAIL "interrupted" and exits 143; another task or a later run
# reruns that point.
"""

BODY = """\
set -eu
: "${SEARCH_STORAGE:?set SEARCH_STORAGE to the study's database URL before sbatch}"
: "${SEARCH_STUDY:?set SEARCH_STUDY to the study's name before sbatch}"
# As many threads as the task has CPUs: single-thread workers side by side beat one worker
# with many threads on these small networks (README, Speed).
export OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}"
# exec: python becomes the batch shell itself, so the SIGTERM of --signal=B:TERM (and of
# `scancel --signal=TERM --batch`) reaches the worker; a shell in between would die of it and
# leave python running outside the job, its trial RUNNING, for the other tasks to wait on.
exec @PYTHON@ -m search.worker --study-name "$SEARCH_STUDY"
"""


@dataclass(frozen=True)
class SlurmJob:
    """A job array's settings: ``tasks`` workers, at most ``parallel`` of them at once."""

    tasks: int = 4
    parallel: int = 2
    time: str = "04:00:00"  # each task's time limit
    cpus_per_task: int = 1
    gpus_per_task: int = 0  # 0: no GPU requested (a cluster without GPUs refuses any)
    python: str = "python3"  # the interpreter whose environment holds the search package
    job_name: str = "search-worker"
    # The folder of the tasks' logs (one slurm-JOB_TASK.out each; it must exist: SLURM makes no
    # folders); empty: sbatch's default, the folder it was run in.
    log_dir: str = ""

    def __post_init__(self) -> None:
        if not TIME_FORMAT.fullmatch(self.time):
            raise UsageError(
                f"--time: {self.time!r} is not a SLURM time (minutes, HH:MM:SS or D-HH:MM:SS)"
            )

    @property
    def array(self) -> str:
        return f"0-{self.tasks - 1}%{self.parallel}"

    def options(self) -> list[str]:
        """The sbatch options, as #SBATCH lines take them and as sbatch's command line gives
        them (where they beat any SBATCH_* variable a site sets)."""
        gpus = [f"--gpus-per-task={self.gpus_per_task}"] if self.gpus_per_task else []
        # %A_%a: the array's id and the task's; stderr goes into the same file (no --error).
        # A '%' in the folder's name is doubled, so that SLURM takes it as it is.
        log = f"{self.log_dir.replace('%', '%%')}/{LOG_NAME}"
        return [
            f"--job-name={self.job_name}",
            f"--array={self.array}",
            "--ntasks=1",
            f"--cpus-per-task={self.cpus_per_task}",
            *gpus,
            f"--time={self.time}",
            "--export=ALL",
            *([f"--output={log}"] if self.log_dir else []),
        ]


def render(job: SlurmJob) -> str:
    """The batch script for ``job``; ``render(SlurmJob())`` is deploy/slurm/worker.sbatch."""
    lines = []
    for option in job.options():
        lines.append(f"#SBATCH {option}")
        if option.startswith("--cpus-per-task") and not job.gpus_per_task:
            lines += ["# On a cluster with GPUs, one per task:", "##SBATCH --gpus-per-task=1"]
    lines += [
        "# SIGTERM to the batch shell (python, below) 60 s before the time limit.",
        "#SBATCH --signal=B:TERM@60",
        "# Requeue a task whose node failed or that was preempted; its log keeps both runs.",
        "#SBATCH --requeue",
        "#SBATCH --open-mode=append",
    ]
    header = "\n".join(lines)
    return HEAD + header + "\n" + BODY.replace("@PYTHON@", shlex.quote(job.python))


def sbatch_path() -> str:
    """Where sbatch is; checked before anything else, so a machine without SLURM says so."""
    found = shutil.which("sbatch")
    if found is None:
        raise SearchError(
            "sbatch not found on PATH: submit from a SLURM login node, or start a one-node "
            "cluster here with `bash deploy/slurm/local-cluster.sh start`"
        )
    return found


def sbatch(job: SlurmJob, script: str, env: dict[str, str]) -> str:
    """Submit ``script`` (on stdin) with ``env`` as the tasks' environment; the job id."""
    argv = [sbatch_path(), "--parsable", *job.options()]
    try:
        done = subprocess.run(
            argv, input=script, env=env, capture_output=True, text=True, timeout=SBATCH_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        raise SearchError(
            f"sbatch did not answer within {SBATCH_TIMEOUT_S} s: is slurmctld up (sinfo)?"
        ) from None
    if done.returncode:
        said = [line for line in done.stderr.splitlines() if line.strip()]
        reason = said[-1].removeprefix("sbatch: error: ") if said else f"exit {done.returncode}"
        raise SearchError(f"sbatch failed: {reason}")
    return done.stdout.strip().split(";")[0]
