"""Command tasks: tune a training script you cannot rewrite (``--task 'cmd:COMMAND'``).

``--task 'cmd:python train.py --lr {lr} --units {units}'`` runs the command once per trial, in
the current directory, without a shell: it is split like a shell line once (``shlex``), then
each ``{name}`` in a word becomes the trial's value of parameter ``name`` (true/false for truth
values), so a value is always within its one argument; ``{{name}}`` stays a literal ``{name}``.
The program must exist when the task loads: a path to an executable file, or a name on PATH,
except ``python`` and ``python3``, which mean the interpreter running the service: it has torch
even when PATH's python does not (``.venv/bin/python -m search.run`` in an unactivated shell),
and every worker started the same way runs the same one. Write a path (``/opt/env/bin/python``)
for another. ``X.toml`` beside a script ``X.py`` the command names is its default space.

The script's environment adds ``SEARCH_TRIAL_DIR`` (its trial's folder), ``SEARCH_SEED``,
``SEARCH_EPOCHS``, ``SEARCH_FINAL`` (1 in the final step, else 0), ``SEARCH_DEVICE``,
``SEARCH_PARAMS`` (the trial's values as JSON), ``SEARCH_TRAIN_LIMIT`` (when set) and
``PYTHONUNBUFFERED=1``. It reports metrics as JSON objects of numbers: lines ``search-metric:
{"epoch": 1, "val_loss": 0.3}`` on stdout, or lines appended to ``$SEARCH_METRICS_FILE``. An
object with an ``"epoch"`` goes to the pruner as it comes; one without holds final metrics,
which ``train`` returns (else the last epoch's). Its stdout and stderr go to ``output.log`` in
the trial folder.

To stop it (pruned, Ctrl-C, SIGTERM) the service creates ``$SEARCH_STOP_FILE``, which the script
should check every epoch, then SIGTERM and SIGKILL follow (``search.tasks.child``).
``$SEARCH_CHECKPOINT_DIR`` is the same folder when an interrupted point runs again, so a script
that keeps its own checkpoints there resumes from them. That resume is the script's own affair
and not bit-exact (the service cannot restore the script's random states). Epochs already
reported are skipped when a rerun repeats them, so a script that reports its kept epochs again
on resuming hands over those it finished after the service stopped listening.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search.errors import UsageError
from search.tasks import loading
from search.tasks.child import METRICS_FILE, PREFIX, STOP_FILE, Child, parse_metrics

if TYPE_CHECKING:  # checking the space's placeholders (search.study) needs no torch
    from search.task import Context

PLACEHOLDER = re.compile(r"\{\{[A-Za-z_]\w*\}\}|\{([A-Za-z_]\w*)\}")
PYTHONS = ("python", "python3")  # mean sys.executable, the service's own interpreter
CHECKPOINT_DIR = "ckpt"  # in the trial folder of a point's first run


def command_task(command: str, where: str = "--task") -> loading.Task:
    """The task that runs ``command``; a command that cannot run is a ``UsageError``."""
    text = command.strip()
    shown = f"{where} {loading.COMMAND_PREFIX}{text if len(text) <= 80 else text[:77] + '...'}"
    words = _split(text, shown)
    program = _program(words[0], shown)
    script = next((Path(w) for w in words if w.endswith(".py") and Path(w).is_file()), None)
    space = script.with_suffix(".toml") if script else None
    files_hash = loading.source_hash(*loading.command_files(text))
    return loading.Task(
        ref=loading.COMMAND_PREFIX + text,
        name=script.stem if script else "command",
        train=Command((program, *words[1:]), shown),
        space_file=space.resolve() if space and space.is_file() else None,
        source_hash=hashlib.sha256(f"{text}\n{files_hash}".encode()).hexdigest(),
    )


def placeholders(command: str) -> set[str]:
    """The parameter names a command's ``{name}`` placeholders need (``cmd:`` optional)."""
    text = command.removeprefix(loading.COMMAND_PREFIX).strip()
    words = _split(text, f"--task {loading.COMMAND_PREFIX}{text}")
    return {m.group(1) for w in words for m in PLACEHOLDER.finditer(w) if m.group(1)}


def substitute(words: Sequence[str], params: dict[str, Any], where: str) -> list[str]:
    """The words with each ``{name}`` replaced by ``params[name]``; else one ValueError."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:  # {{name}}: a literal {name}
            return match.group(0)[1:-1]
        if name not in params:
            have = ", ".join(sorted(params)) or "none"
            raise ValueError(f"{where}: placeholder {{{name}}} is not a parameter; it has: {have}")
        v = params[name]
        return ("true" if v else "false") if isinstance(v, bool) else str(v)

    return [PLACEHOLDER.sub(value, w) for w in words]


def _split(text: str, shown: str) -> list[str]:
    try:
        words = shlex.split(text)
    except ValueError as e:  # "No closing quotation", "No escaped character"
        raise UsageError(f"{shown}: cannot split the command: {str(e).lower()}") from None
    if not words:
        raise UsageError(f"{shown}: empty command; give one, e.g. cmd:python train.py --lr {{lr}}")
    return words


def _program(word: str, shown: str) -> str:
    """The program's path, checked now so that a typo fails before any trial starts."""
    if PLACEHOLDER.search(word):
        raise UsageError(f"{shown}: the program {word} cannot be a placeholder; name it")
    if os.sep in word or (os.altsep and os.altsep in word):
        if not Path(word).is_file():
            raise UsageError(f"{shown}: command not found: {word} (no such file)")
        if not os.access(word, os.X_OK):
            raise UsageError(
                f"{shown}: {word} is not executable; chmod +x it, or run it through its "
                f"interpreter (cmd:bash {word} ...)"
            )
        return str(Path(word).resolve())
    found = sys.executable if word in PYTHONS and sys.executable else shutil.which(word)
    if found is None:
        hint = f"; give its path (./{word})" if Path(word).is_file() else " on PATH"
        raise UsageError(f"{shown}: command not found: {word}{hint}")
    return found


@dataclass(frozen=True)
class Command:
    """A command task's ``train(params, ctx)``: one run of the command per call."""

    words: tuple[str, ...]  # the program's path, then the arguments with their placeholders
    where: str  # "--task cmd:...", to start its messages

    def __call__(self, params: dict[str, Any], ctx: Context) -> dict[str, float]:
        argv = substitute(self.words, params, self.where)
        trial_dir = Path(ctx.trial_dir or tempfile.mkdtemp(prefix="search-trial-")).resolve()
        trial_dir.mkdir(parents=True, exist_ok=True)
        state = ctx.restore()  # the checkpoint folder of this point's interrupted run
        folder = Path(state["checkpoint_dir"]) if state else trial_dir / CHECKPOINT_DIR
        folder.mkdir(parents=True, exist_ok=True)
        done, last = (state["epoch"], state["metrics"]) if state else (0, {})  # so far
        child = Child(argv, trial_dir, _environment(params, ctx, trial_dir, folder))
        final: dict[str, float] = {}
        try:
            for source, text in child.metric_lines():
                epoch, metrics = parse_metrics(text, source)
                if epoch is None:
                    final.update(metrics)
                elif epoch > done:  # not reported already, before the run was stopped
                    ctx.report(epoch, **metrics)
                    ctx.checkpoint(
                        {"checkpoint_dir": str(folder), "epoch": epoch, "metrics": metrics}
                    )
                    done = epoch
                last = metrics if epoch is not None else last
        except BaseException:  # pruned, Ctrl-C, SIGTERM, a bad line: never leave it running
            child.stop()
            raise
        failed = child.failure()
        if failed:
            raise RuntimeError(failed)
        if not (final or last):
            raise RuntimeError(
                f"command reported no metrics; print lines {PREFIX} {{JSON object}} or append "
                "them to $SEARCH_METRICS_FILE"
            )
        return final or last


def _environment(
    params: dict[str, Any], ctx: Context, trial_dir: Path, folder: Path
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SEARCH_TRAIN_LIMIT"}
    env.setdefault("PYTHONUNBUFFERED", "1")  # a Python script's lines arrive as it prints them
    env.update(
        SEARCH_METRICS_FILE=str(trial_dir / METRICS_FILE),
        SEARCH_TRIAL_DIR=str(trial_dir),
        SEARCH_SEED=str(ctx.seed),
        SEARCH_EPOCHS=str(ctx.epochs),
        SEARCH_FINAL="1" if ctx.final else "0",
        SEARCH_STOP_FILE=str(trial_dir / STOP_FILE),
        SEARCH_CHECKPOINT_DIR=str(folder),
        SEARCH_DEVICE=str(ctx.device),
        SEARCH_PARAMS=json.dumps(params, default=str),
    )
    if ctx.train_limit is not None:
        env["SEARCH_TRAIN_LIMIT"] = str(ctx.train_limit)
    return env
