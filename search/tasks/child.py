"""A command task's child process: run it, follow the metrics it reports, stop it.

The protocol (``search.tasks.command`` tells the script's side): metric lines are JSON objects
of numbers, printed on stdout after ``search-metric:`` or appended to ``$SEARCH_METRICS_FILE``,
both followed while the command runs: a thread reads stdout (into ``output.log``), and the file
is read whenever a stdout line arrives or ``POLL_S`` has passed. ``Child.stop`` creates the stop
file, then signals the command's process group: SIGTERM after ``GRACE_S``, SIGKILL after as long
again; it returns once the command has exited.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import threading
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from subprocess import DEVNULL, PIPE, STDOUT, Popen, TimeoutExpired

from search import signals

PREFIX = "search-metric:"  # a stdout line holding metrics: the prefix, then a JSON object
GRACE_S = 10.0  # seconds a stopped command gets after the stop file, then after SIGTERM
POLL_S = 0.2  # seconds between reads of the metrics file while the command runs
TAIL_LINES, TAIL_CHARS = 3, 300  # the output a failure's message ends with
METRICS_FILE, STOP_FILE, LOG_FILE = "metrics.jsonl", "stop", "output.log"


def parse_metrics(text: str, source: str) -> tuple[int | None, dict[str, float]]:
    """A metrics line's epoch (None: final metrics) and numbers; a ValueError names the line."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        obj = None
    ok = isinstance(obj, dict) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in obj.values()
    )
    epoch = obj.get("epoch") if ok else None
    if not ok or (epoch is not None and (not isinstance(epoch, int) or epoch < 1)):
        raise ValueError(
            f"{source}: expected a JSON object of numbers with an optional whole epoch from 1, "
            f'e.g. {{"epoch": 1, "val_loss": 0.3}}, got {text.strip()[:100]!r}'
        )
    return epoch, {k: float(v) for k, v in obj.items() if k != "epoch"}


class Child:
    """One run of the command: its process, and the metric lines it prints or writes."""

    def __init__(self, argv: list[str], trial_dir: Path, env: dict[str, str]) -> None:
        self.stop_file = trial_dir / STOP_FILE
        self.stop_file.unlink(missing_ok=True)  # left by an earlier run in this folder
        self.metrics_file = trial_dir / METRICS_FILE
        old = self.metrics_file.read_bytes() if self.metrics_file.is_file() else b""
        self.offset, self.line_no = len(old), old.count(b"\n")  # lines of earlier runs
        self.lines: queue.Queue[tuple[str, str]] = queue.Queue()
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        # In a process group of its own, Ctrl-C reaches the service only, which stops the script
        # and what it started (a shell script's python, data loader workers) together.
        self.proc = Popen(
            argv, stdin=DEVNULL, stdout=PIPE, stderr=STDOUT, env=env, start_new_session=True
        )
        self.reader = threading.Thread(target=self._read, args=(trial_dir / LOG_FILE,))
        self.reader.daemon = True
        self.reader.start()

    def failure(self) -> str | None:
        """One line for a command that exited with an error, ending with its last output."""
        code = self.proc.returncode
        if code == 0:
            return None
        how = str(code)
        if code < 0:  # killed by a signal; Signals knows the usual ones by name
            with contextlib.suppress(ValueError):
                how += f" ({signal.Signals(-code).name})"
        out = " | ".join(self.tail) or "(none)"
        out = out if len(out) <= TAIL_CHARS else "..." + out[3 - TAIL_CHARS :]
        return f"command exited with code {how}; last output: {out}"

    def _read(self, log: Path) -> None:
        assert self.proc.stdout is not None
        with open(log, "ab") as out, self.proc.stdout:
            for n, raw in enumerate(self.proc.stdout, 1):
                out.write(raw)
                out.flush()
                line = raw.decode(errors="replace").strip()
                if line:
                    self.tail.append(line)
                if line.startswith(PREFIX):
                    self.lines.put((f"output line {n}", line[len(PREFIX) :]))

    def metric_lines(self) -> Iterator[tuple[str, str]]:
        """(where, text) of each metric line, as it comes, until the command has exited."""
        while True:
            signals.stop_point()  # a stop of the service stops the command (the caller)
            finished = not self.reader.is_alive()  # before the queue is found empty
            try:
                yield self.lines.get(block=not finished, timeout=POLL_S)
                finished = False  # more may wait
            except queue.Empty:
                pass
            yield from self._file_lines(whole=False)
            if finished:
                break
        self.proc.wait()
        yield from self._file_lines(whole=True)

    def _file_lines(self, whole: bool) -> Iterator[tuple[str, str]]:
        try:
            with open(self.metrics_file, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return
        end = len(data) if whole else data.rfind(b"\n") + 1  # a line being written waits
        self.offset += end
        for line in data[:end].decode(errors="replace").splitlines():
            self.line_no += 1
            if line.strip():
                yield f"$SEARCH_METRICS_FILE line {self.line_no}", line

    def stop(self) -> None:
        """The stop file, then SIGTERM, then SIGKILL, each ``GRACE_S`` after the last; returns
        once the command has exited (a second Ctrl-C while it waits kills it at once)."""
        self.stop_file.touch()
        try:
            for signum in (0, signal.SIGTERM):  # 0 sends nothing: the stop file comes first
                if self.proc.poll() is None:
                    self._signal(signum)
                    with contextlib.suppress(TimeoutExpired):
                        self.proc.wait(GRACE_S)
        finally:
            self._signal(signal.SIGKILL)  # it, if still there, and anything it started
            self.proc.wait()
            self.reader.join(GRACE_S)

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(OSError):  # the group is gone already
            os.killpg(self.proc.pid, signum)
