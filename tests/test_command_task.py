"""Command tasks (``--task 'cmd:...'``): placeholders, metrics, stopping, failures, resuming.

Each test writes a tiny script and runs it through ``load_task`` and ``train`` in this
process, as a study's worker would; the scripts wait for the service's stop file, never for time.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from search.errors import UsageError
from search.study.space.spacefile import load_space
from search.task import Context, Pruned
from search.tasks import child
from search.tasks.command import placeholders, substitute
from search.tasks.loading import load_task
from search.tasks.local import LocalRecorder, Stop

ROOT = Path(__file__).resolve().parent.parent
PY = shlex.quote(sys.executable)
PRELUDE = """\
import json, os, signal, subprocess, sys, time
from pathlib import Path
TRIAL = Path(os.environ["SEARCH_TRIAL_DIR"])
STOP = Path(os.environ["SEARCH_STOP_FILE"])
(TRIAL / "pid").write_text(str(os.getpid()))
def metric(obj):
    print("search-metric:", json.dumps(obj), flush=True)
def wait_for(path):  # the event this script waits on, e.g. the service's stop file
    deadline = time.monotonic() + 30
    while not path.exists():
        if time.monotonic() > deadline:
            sys.exit(f"waited 30 s for {path}")
        time.sleep(0.01)
"""


@dataclass
class StopAt(LocalRecorder):
    """Prunes at epoch ``at`` (returns a reason), or raises ``raising`` there (a Ctrl-C)."""

    at: int = 2
    raising: type[BaseException] | None = None

    def report(self, epoch: int, metrics: dict[str, float]) -> str | None:
        super().report(epoch, metrics)
        if epoch == self.at and self.raising is not None:
            raise self.raising
        return f"pruned at epoch {epoch}" if epoch == self.at else None


def script(tmp_path: Path, body: str, name: str = "job.py") -> Path:
    path = tmp_path / name
    path.write_text(PRELUDE + textwrap.dedent(body))
    return path


def context(tmp_path: Path, recorder: LocalRecorder, trial: str = "trial", epochs: int = 3):
    return Context(
        seed=7,
        device=torch.device("cpu"),
        data_dir=tmp_path,
        epochs=epochs,
        recorder=recorder,
        trial_dir=tmp_path / trial,
    )


def running(pid: int) -> bool:
    """Alive: an exited process that waits for its parent to collect it is not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


@pytest.mark.parametrize("channel", ["stdout", "file"])
def test_placeholders_are_filled_and_metrics_come_from_stdout_or_the_metrics_file(
    tmp_path, channel
):
    job = script(
        tmp_path,
        """
        (TRIAL / "argv.json").write_text(json.dumps(sys.argv[1:]))
        def out(obj):
            if sys.argv[1] == "stdout":
                return metric(obj)
            with open(os.environ["SEARCH_METRICS_FILE"], "a") as f:
                f.write(json.dumps(obj) + "\\n")
        out({"epoch": 1, "lr": float(sys.argv[3])})
        print("some chatter")
        out({"epoch": 2, "seed": int(os.environ["SEARCH_SEED"]), "epochs": 3})
        out({"acc": 0.5})
        """,
    )
    task = load_task(f"cmd:{PY} {job} {channel} --lr {{lr}} --tag {{tag}} --flag={{flag}}")
    recorder = LocalRecorder(tmp_path / "ckpt")
    ctx = context(tmp_path, recorder)
    result = task.train({"lr": 0.05, "tag": "a b", "flag": True}, ctx)
    argv = json.loads((ctx.trial_dir / "argv.json").read_text())
    assert argv == [channel, "--lr", "0.05", "--tag", "a b", "--flag=true"]
    assert recorder.history == [{"epoch": 1, "lr": 0.05}, {"epoch": 2, "seed": 7, "epochs": 3}]
    assert result == {"acc": 0.5}
    assert "some chatter" in (ctx.trial_dir / "output.log").read_text()


def test_without_final_metrics_train_returns_the_last_epochs(tmp_path):
    job = script(tmp_path, 'metric({"epoch": 1, "loss": 2.0})\nmetric({"epoch": 2, "loss": 1})\n')
    task = load_task(f"cmd:{PY} {job}")
    assert task.train({}, context(tmp_path, LocalRecorder(tmp_path / "ckpt"))) == {"loss": 1.0}


@pytest.mark.parametrize("raising", [None, KeyboardInterrupt], ids=["pruned", "ctrl-c"])
def test_a_pruned_or_interrupted_trial_stops_its_command_and_raises(tmp_path, raising):
    job = script(
        tmp_path,
        """
        for epoch in range(1, 50):
            metric({"epoch": epoch, "loss": 1 / epoch})
            if epoch == 2:
                wait_for(STOP)
                (TRIAL / "saw_stop").touch()
                sys.exit(0)
        """,
    )
    recorder = StopAt(tmp_path / "ckpt", at=2, raising=raising)
    ctx = context(tmp_path, recorder)
    with pytest.raises(raising or Pruned):
        load_task(f"cmd:{PY} {job}").train({}, ctx)
    assert (ctx.trial_dir / "saw_stop").exists()  # it stopped itself, seeing the stop file
    with pytest.raises(ProcessLookupError):
        os.kill(int((ctx.trial_dir / "pid").read_text()), 0)
    assert [h["epoch"] for h in recorder.history] == [1, 2]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_a_command_that_ignores_the_stop_file_and_sigterm_is_killed_with_what_it_started(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(child, "GRACE_S", 0.2)
    job = script(
        tmp_path,
        """
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        code = ("import signal, time, pathlib, sys; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
                "pathlib.Path(sys.argv[1]).touch(); time.sleep(60)")
        helper = subprocess.Popen([sys.executable, "-c", code, str(TRIAL / "ready")])
        (TRIAL / "helper").write_text(str(helper.pid))
        wait_for(TRIAL / "ready")
        for epoch in range(1, 3):
            metric({"epoch": epoch, "loss": 1.0})
        while True:
            time.sleep(0.05)
        """,
    )
    ctx = context(tmp_path, StopAt(tmp_path / "ckpt", at=2))
    with pytest.raises(Pruned):
        load_task(f"cmd:{PY} {job}").train({}, ctx)
    assert not running(int((ctx.trial_dir / "pid").read_text()))
    assert not running(int((ctx.trial_dir / "helper").read_text()))


def test_a_failing_command_fails_the_trial_with_one_line_ending_with_its_last_output(tmp_path):
    job = script(tmp_path, 'print("one")\nprint("two")\nprint()\nprint("three")\nsys.exit("four")')
    ctx = context(tmp_path, LocalRecorder(tmp_path / "ckpt"))
    with pytest.raises(RuntimeError) as failed:
        load_task(f"cmd:{PY} {job}").train({}, ctx)
    assert str(failed.value) == "command exited with code 1; last output: two | three | four"
    assert "one" in (ctx.trial_dir / "output.log").read_text()  # all of it is kept there


def test_a_malformed_metric_line_fails_the_trial_naming_it_and_stops_the_command(tmp_path):
    job = script(tmp_path, 'print("hello")\nmetric({"epoch": 1, "acc": "high"})\nwait_for(STOP)')
    ctx = context(tmp_path, LocalRecorder(tmp_path / "ckpt"))
    with pytest.raises(ValueError) as failed:
        load_task(f"cmd:{PY} {job}").train({}, ctx)
    message = str(failed.value)
    assert "output line 2" in message and '"acc": "high"' in message and "\n" not in message
    with pytest.raises(ProcessLookupError):
        os.kill(int((ctx.trial_dir / "pid").read_text()), 0)


@pytest.mark.parametrize(
    ("command", "named"),
    [
        ("no-such-program-3f9 --lr {lr}", "command not found: no-such-program-3f9"),
        ("TMP/missing.sh --lr {lr}", "command not found: TMP/missing.sh"),
        ("TMP/job.py", "TMP/job.py is not executable"),
        ("", "empty command"),
        ("python 'train.py", "no closing quotation"),
    ],
)
def test_a_command_that_cannot_run_is_a_usage_error_at_load(tmp_path, command, named):
    (tmp_path / "job.py").write_text("print('hi')\n")  # not executable
    with pytest.raises(UsageError) as bad:
        load_task("cmd:" + command.replace("TMP", str(tmp_path)))
    assert str(bad.value).startswith("--task cmd:")
    assert named.replace("TMP", str(tmp_path)) in str(bad.value)


def test_a_placeholder_the_trial_lacks_fails_with_one_line_before_the_command_runs(tmp_path):
    job = script(tmp_path, 'metric({"epoch": 1})\n')
    ctx = context(tmp_path, LocalRecorder(tmp_path / "ckpt"))
    with pytest.raises(ValueError) as failed:
        load_task(f"cmd:{PY} {job} --lr {{lr}} --units {{units}}").train({"lr": 0.1}, ctx)
    assert "placeholder {units}" in str(failed.value) and "it has: lr" in str(failed.value)
    assert not (ctx.trial_dir / "output.log").exists()


def test_placeholders_are_the_names_a_command_needs_and_double_braces_stay_literal():
    command = "cmd:python t.py --lr {lr} --units={units} --x '{{literal}}' --again {lr}"
    assert placeholders(command) == {"lr", "units"}
    assert substitute(["--x", "{{literal}}"], {}, "--task") == ["--x", "{literal}"]


def test_python_means_the_interpreter_running_the_service(tmp_path, monkeypatch):
    other = tmp_path / "python"
    other.write_text("#!/bin/sh\nexit 3\n")
    other.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))  # PATH's python is another one
    assert load_task("cmd:python train.py").train.words[0] == sys.executable


RESUMING = """
folder = Path(os.environ["SEARCH_CHECKPOINT_DIR"])
(TRIAL / "folder").write_text(str(folder))
state = folder / "state.txt"
start = int(state.read_text()) + 1 if state.exists() else 1
for epoch in range(start, int(os.environ["SEARCH_EPOCHS"]) + 1):
    metric({"epoch": epoch, "start": start})
    if sys.argv[1] != "forgets":
        state.write_text(str(epoch))
    if epoch == 1 and TRIAL.name == "first" and sys.argv[1] != "finishes":
        break
if TRIAL.name == "first":  # the first run waits to be stopped
    wait_for(STOP)
"""


def stop_and_rerun(tmp_path: Path, state: str) -> tuple[dict, list[int], Context, Context]:
    """Runs the script until the checkpoint after epoch 1 stops it, then again to the end."""
    task = load_task(f"cmd:{PY} {script(tmp_path, RESUMING)} {state}")
    first = context(tmp_path, LocalRecorder(tmp_path / "ckpt", stop_after=1), "first")
    with pytest.raises(Stop):
        task.train({}, first)
    recorder = LocalRecorder(tmp_path / "ckpt", resume=True)
    again = context(tmp_path, recorder, "again")
    result = task.train({}, again)
    return result, [h["epoch"] for h in recorder.history], first, again


def test_the_checkpoint_folder_survives_a_stop_and_a_rerun(tmp_path):
    result, epochs, first, again = stop_and_rerun(tmp_path, "keeps")
    assert result == {"start": 2.0}  # it resumed from the state file it kept there
    assert (again.trial_dir / "folder").read_text() == (first.trial_dir / "folder").read_text()
    assert epochs == [1, 2, 3]


def test_an_epoch_a_rerun_repeats_is_not_reported_twice(tmp_path):
    result, epochs, _, _ = stop_and_rerun(tmp_path, "forgets")
    assert result == {"start": 1.0}  # it started over
    assert epochs == [1, 2, 3]


def test_a_rerun_with_nothing_left_to_report_returns_the_last_metrics_reported(tmp_path):
    result, epochs, _, _ = stop_and_rerun(tmp_path, "finishes")  # it ended after the stop
    assert result == {"start": 1.0}
    assert epochs == [1]


def test_a_command_task_records_its_command_script_space_and_source(tmp_path):
    job = script(tmp_path, 'metric({"epoch": 1})\n')
    (tmp_path / "job.toml").write_text("[params]\nlr = { low = 0.001, high = 0.1 }\n")
    task = load_task(f"cmd:{PY} {job} --lr {{lr}}")
    assert (task.ref, task.name) == (f"cmd:{PY} {job} --lr {{lr}}", "job")
    assert task.space_file == (tmp_path / "job.toml").resolve() and task.load_data is None
    job.write_text(job.read_text() + "# changed\n")
    assert load_task(task.ref).source_hash != task.source_hash
    bare = load_task(f"cmd:{PY} -c pass")
    assert (bare.name, bare.space_file) == ("command", None)


def test_the_example_script_trains_two_epochs_as_a_command_task(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the command names the script from the repository's root
    task = load_task("cmd:python examples/script_task/train.py --lr {lr} --units {units}")
    space = load_space(task.space_file, open_=True)
    assert placeholders(task.ref) <= set(space.params)
    assert space.objective == (("val_loss", "minimize"),)
    recorder = LocalRecorder(tmp_path / "ckpt")
    result = task.train({"lr": 0.01, "units": 32}, context(tmp_path, recorder, epochs=2))
    assert [h["epoch"] for h in recorder.history] == [1, 2]
    assert set(result) == {"train_loss", "val_loss", "val_acc"}


@pytest.mark.slow
def test_the_example_script_runs_on_its_own_without_the_service():
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEARCH_")}
    done = subprocess.run(
        [sys.executable, "examples/script_task/train.py", "--lr", "0.01", "--epochs", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    prefix, _, line = done.stdout.partition(" ")
    assert prefix == "search-metric:" and json.loads(line)["epoch"] == 1
