"""Checking that a task resumes exactly, as ``python -m search.check`` does.

One configuration of the task is trained twice in this process: straight through, and stopped
right after epoch 1's checkpoint, then resumed from it with a fresh ``Context``. Every metric
the two report, epoch by epoch, and what they return must be equal bit for bit (timing metrics
aside): otherwise a study's interrupted trial would not end as an uninterrupted one would.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from search.errors import SearchError, first_line
from search.task import Context, DataContext, as_number
from search.tasks.loading import Task
from search.tasks.local import LocalRecorder, Stop

STOP_EPOCH = 1  # the stopped run ends right after this epoch's checkpoint
TIMING = ("second", "time")  # a metric whose name holds one of these is a duration


@dataclass(frozen=True)
class Difference:
    """The first place where the stopped-and-resumed run differs from the straight one."""

    metric: str  # a metric's name; "epoch" when the runs reported different epochs
    epoch: int | None  # None: in the returned metrics
    straight: Any  # a number, or None where that run did not report it
    resumed: Any


# What makes resuming impossible, by the key ``Outcome.findings`` holds.
FINDINGS = {
    "no_report": "the task never calls ctx.report: pruning cannot stop its bad trials, and its "
    "curves are empty",
    "no_checkpoint": "the task never calls ctx.checkpoint: an interrupted trial starts over "
    "from epoch 1",
    "no_stop": f"the run did not stop after epoch {STOP_EPOCH}'s checkpoint: call "
    "ctx.report(epoch, ...) and then ctx.checkpoint(...) in every epoch",
    "no_restore": "train never calls ctx.restore(): an interrupted trial starts over from epoch 1",
}


@dataclass
class Outcome:
    epoch_seconds: float  # the straight run's fastest epoch (the first may warm up)
    load_seconds: float = 0.0  # load_data's time
    findings: list[str] = field(default_factory=list)  # keys of FINDINGS
    difference: Difference | None = None

    @property
    def exact(self) -> bool:
        return not self.findings and self.difference is None


@dataclass
class CheckRecorder(LocalRecorder):
    """A ``LocalRecorder`` that also notes when each epoch was reported and whether the task
    asked for its checkpoint."""

    times: list[float] = field(default_factory=list)  # time.perf_counter() of each report
    loaded: bool = False

    def report(self, epoch: int, metrics: dict[str, float]) -> str | None:
        self.times.append(time.perf_counter())
        return super().report(epoch, metrics)

    def load(self) -> dict[str, Any] | None:
        self.loaded = True
        return super().load()


def middle(low: float, high: float, log: bool, integer: bool) -> float | int:
    """The middle of a range (geometric for a log range); a float to 3 significant digits."""
    value = math.sqrt(low * high) if log else (low + high) / 2
    if integer:
        return min(max(round(value), int(low)), int(high))
    return min(max(float(f"{value:.3g}"), low), high)


def pick_point(space: Any, epochs: int) -> dict[str, Any]:
    """One small configuration: the ``[baseline]`` value where the space gives one, else a
    fixed value, the first choice, the middle of a range. An ``epochs`` parameter is capped to
    ``epochs`` (and kept at 2 or more: the check stops after epoch 1)."""
    point = {}
    # Duck-typed: search.study's Fixed (value), Choice (values) and Range sit in a layer above.
    for name, param in space.params.items():
        if name in space.baseline:
            point[name] = space.baseline[name]
        elif hasattr(param, "value"):
            point[name] = param.value
        elif hasattr(param, "values"):
            point[name] = param.values[0]
        else:
            point[name] = middle(param.low, param.high, param.log, param.integer)
    if _whole(point.get("epochs")):
        point["epochs"] = max(min(point["epochs"], epochs), STOP_EPOCH + 1)
    return point


def epoch_budget(point: dict[str, Any], epochs: int) -> int:
    """A trial's ``ctx.epochs``: the point's own ``epochs`` (capped by ``pick_point``), else
    ``epochs``."""
    return point["epochs"] if _whole(point.get("epochs")) else epochs


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_task(
    task: Task, params: dict[str, Any], epochs: int, data_ctx: DataContext, folder: Path
) -> Outcome:
    """Load the data once (timed), then check that ``task`` resumes exactly at ``params``
    with an ``epochs`` budget, its checkpoints in ``folder``."""
    data, start = None, time.perf_counter()
    if task.load_data is not None:
        data = _call(task.load_data, "load_data", "", data_ctx)
    load_seconds = time.perf_counter() - start
    base = Context(**vars(data_ctx), data=data, epochs=epochs)
    outcome = check_resume(task, params, base, folder)
    outcome.load_seconds = load_seconds
    return outcome


def check_resume(task: Task, params: dict[str, Any], base: Context, folder: Path) -> Outcome:
    """Run ``task`` straight through and stopped-and-resumed in ``folder``; ``base`` holds the
    seed, device, data and epoch budget every run's ``Context`` gets."""
    straight = CheckRecorder(folder / "straight")
    start = time.perf_counter()
    returned = _train(task, params, base, straight, "")
    ends = straight.times or [time.perf_counter()]
    outcome = Outcome(min(b - a for a, b in zip([start, *ends], ends, strict=False)))
    if not straight.history:
        outcome.findings.append("no_report")
    if not straight.checkpoints:
        outcome.findings.append("no_checkpoint")
    if outcome.findings:
        return outcome
    try:
        _train(task, params, base, CheckRecorder(folder / "resumed", stop_after=STOP_EPOCH), "")
    except Stop:  # as planned: right after epoch 1's checkpoint
        pass
    else:
        outcome.findings.append("no_stop")
        return outcome
    resumed = CheckRecorder(folder / "resumed", resume=True)
    again = _train(task, params, base, resumed, f", resuming after epoch {STOP_EPOCH}")
    if not resumed.loaded:
        outcome.findings.append("no_restore")
        return outcome
    outcome.difference = first_difference(straight.history, resumed.history, returned, again)
    return outcome


def _train(
    task: Task, params: dict[str, Any], base: Context, recorder: LocalRecorder, when: str
) -> dict[str, float]:
    """One run, every random state seeded as the service seeds a trial's."""
    recorder.folder.mkdir(parents=True, exist_ok=True)
    ctx = replace(base, trial_dir=recorder.folder, recorder=recorder)  # a fresh generator too
    torch.manual_seed(base.seed)
    np.random.seed(base.seed)
    random.seed(base.seed)
    with _deterministic_kernels():
        result = _call(task.train, "train", when, dict(params), ctx)
    if not isinstance(result, Mapping):
        raise SearchError(
            f"train returned {type(result).__name__}{when}; return the final metrics as a "
            "dict of numbers"
        )
    try:
        return {str(k): as_number(f"train returned {k}", v) for k, v in result.items()}
    except TypeError as e:
        raise SearchError(f"{e}{when}") from None


def _call(fn: Any, name: str, when: str, *args: Any) -> Any:
    """``fn(*args)``; the task's own error as one line (the traceback is chained for
    ``--debug``)."""
    try:
        return fn(*args)
    except Exception as e:
        frames = traceback.extract_tb(e.__traceback__)
        at = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
        reason = first_line(e)
        raise SearchError(f"{name} raised {type(e).__name__}: {reason}{at}{when}") from e


@contextlib.contextmanager
def _deterministic_kernels() -> Iterator[None]:
    """cuDNN picks among convolution algorithms by timing them, which would differ run to run
    and hide what the check is after."""
    was = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = was


def is_timing(metric: str) -> bool:
    return any(word in metric.lower() for word in TIMING)


def first_difference(
    straight: list[dict[str, float]],
    resumed: list[dict[str, float]],
    returned: dict[str, float],
    again: dict[str, float],
) -> Difference | None:
    """The first epoch's first metric (in the straight run's order) that differs, then the
    returned metrics; timing metrics aside."""
    for i in range(max(len(straight), len(resumed))):
        a = straight[i] if i < len(straight) else {}
        b = resumed[i] if i < len(resumed) else {}
        if a.get("epoch") != b.get("epoch"):
            return Difference("epoch", None, a.get("epoch"), b.get("epoch"))
        found = _differing(a, b)
        if found is not None:
            return Difference(found, int(a["epoch"]), a.get(found), b.get(found))
    found = _differing(returned, again)
    return (
        None if found is None else Difference(found, None, returned.get(found), again.get(found))
    )


def _differing(a: dict[str, float], b: dict[str, float]) -> str | None:
    names = [*a, *(n for n in b if n not in a)]
    return next((n for n in names if not is_timing(n) and a.get(n) != b.get(n)), None)
