"""The example tasks in examples/: each loads with its space, reports every epoch, resumes
exactly after a stop, and returns its test metric in the final step. Tiny caps keep them fast."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch

from search.study.space.space import Choice, Fixed, Space
from search.study.space.spacefile import load_space
from search.task import Context, DataContext
from search.tasks.loading import Task, load_task
from search.tasks.local import LocalRecorder, Stop

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# name: (objective metric, direction, the final step's metric)
OBJECTIVES = {
    "digits": ("val_acc", "maximize", "test_acc"),
    "regression": ("val_rmse", "minimize", "test_rmse"),
    "mnist_cnn": ("val_acc", "maximize", "test_acc"),
}
SEED = 3
TRAIN_LIMIT = 200  # below every example's training set (diabetes: 282 rows)
EPOCHS = 3  # stopped after 1: the resumed run steps its scheduler at least twice
SETTINGS = {"val_size": 500}  # the study's settings: mnist_cnn validates on 500 images
CPU = torch.device("cpu")


def middle_point(space: Space) -> dict[str, Any]:
    """A point of the space: fixed values, each choice's first, each range's middle."""
    point: dict[str, Any] = {}
    for name, p in space.params.items():
        if isinstance(p, Fixed):
            point[name] = p.value
        elif isinstance(p, Choice):
            point[name] = p.values[0]
        else:
            mid = math.sqrt(p.low * p.high) if p.log else (p.low + p.high) / 2
            point[name] = round(mid) if p.integer else mid
    return point


@dataclass
class Example:
    name: str
    task: Task
    space: Space
    data_dir: Path
    params: dict[str, Any]
    folder: Path
    data: dict[bool, Any] = field(default_factory=dict)  # load_data's, by ctx.final
    straight_run: tuple[Any, list] | None = None

    def straight(self) -> tuple[Any, list]:
        """A run straight through, made once and shared by the tests that read it."""
        if self.straight_run is None:
            self.straight_run = self.run(self.folder / "straight")
        return self.straight_run

    def where(self, final: bool) -> dict[str, Any]:
        """What the DataContext and the Context share for a search or the final step."""
        return dict(
            seed=SEED,
            device=CPU,
            data_dir=self.data_dir,
            final=final,
            train_limit=TRAIN_LIMIT,
            settings=SETTINGS,
        )

    def load(self, final: bool) -> Any:
        """``load_data``'s data for a search or the final step, loaded once as a worker
        process loads it once for all its trials."""
        if final not in self.data:
            self.data[final] = self.task.load_data(DataContext(**self.where(final)))
        return self.data[final]

    def run(self, folder: Path, final: bool = False, **recorder: Any) -> tuple[Any, list]:
        """Train in this process as the service would: torch's RNG seeded before the trial;
        returns what train returned (None if stopped) and the reports."""
        rec = LocalRecorder(folder, **recorder)
        data = self.load(final)
        ctx = Context(**self.where(final), data=data, epochs=EPOCHS, recorder=rec)
        torch.manual_seed(SEED)  # as the service seeds it before each trial
        try:
            result = self.task.train(self.params, ctx)
        except Stop:
            result = None
        return result, rec.history


@pytest.fixture(scope="module", params=sorted(OBJECTIVES))
def example(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Example:
    name = request.param
    folder = tmp_path_factory.mktemp(name)
    # MNIST needs the real data (the `real_root` fixture skips without it, fails under CI).
    data_dir = request.getfixturevalue("real_root") if name == "mnist_cnn" else folder
    task = load_task(str(EXAMPLES / f"{name}.py"))
    space = load_space(task.space_file, open_=True)
    return Example(name, task, space, data_dir, {**middle_point(space), "epochs": EPOCHS}, folder)


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_an_example_loads_with_its_functions_space_and_objective(name: str) -> None:
    task = load_task(str(EXAMPLES / f"{name}.py"))
    assert callable(task.train) and callable(task.load_data)
    assert task.space_file == EXAMPLES / f"{name}.toml"
    metric, direction, _ = OBJECTIVES[name]
    assert load_space(task.space_file, open_=True).objective == ((metric, direction),)


@pytest.mark.parametrize("final", [False, True], ids=["search", "final"])
def test_an_example_caps_its_training_examples_at_train_limit(
    example: Example, final: bool
) -> None:
    _, labels = example.load(final)["train"]
    assert len(labels) == TRAIN_LIMIT


def test_an_example_reports_finite_metrics_every_epoch_and_returns_its_objective(
    example: Example,
) -> None:
    result, history = example.straight()
    metric = example.space.objective[0][0]
    assert [h["epoch"] for h in history] == list(range(1, EPOCHS + 1))
    assert all(metric in h and "train_loss" in h for h in history)
    assert all(math.isfinite(v) for h in history for v in h.values())
    assert math.isfinite(result[metric])


def test_an_example_stopped_after_one_epoch_resumes_to_the_same_metrics(
    example: Example, tmp_path: Path
) -> None:
    straight, straight_history = example.straight()
    stopped, _ = example.run(tmp_path / "stopped", stop_after=1)
    resumed, resumed_history = example.run(tmp_path / "stopped", resume=True)
    assert stopped is None
    assert resumed_history == straight_history  # bit for bit: no example reports a time
    assert resumed == straight


def test_the_final_step_of_an_example_returns_its_test_metric(
    example: Example, tmp_path: Path
) -> None:
    result, history = example.run(tmp_path / "final", final=True)
    test_metric = OBJECTIVES[example.name][2]
    assert math.isfinite(result[test_metric])
    assert not any(k.startswith("val_") for k in [*result, *(k for h in history for k in h)])
    assert [h["epoch"] for h in history] == list(range(1, EPOCHS + 1))
