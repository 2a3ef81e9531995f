"""The datasets the service knows, where their files live, and the data a study trains on.

Plain Python (no torch), so that the commands that only read a study can check a setting
without importing the engine. ``search.engine.data`` loads the files; ``search.engine.download``
fetches them when they are absent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from search.errors import DataError

# name -> (torchvision class name, folder under the root, training-set mean and std of [0, 1]
# pixels). MNIST's figures are the reference study's; the others are their own training sets'.
DATASETS: dict[str, tuple[str, str, float, float]] = {
    "mnist": ("MNIST", "MNIST", 0.1307, 0.3081),
    "fashion-mnist": ("FashionMNIST", "FashionMNIST", 0.2860, 0.3530),
    "kmnist": ("KMNIST", "KMNIST", 0.1918, 0.3483),
}
RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def default_data_dir() -> str:
    """``$SEARCH_DATA_DIR`` when set, else ``./data`` (where torchvision downloads to)."""
    return os.environ.get("SEARCH_DATA_DIR") or "data"


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "mnist"
    data_dir: str = "data"
    val_size: int = 5000  # samples held out of the training set for model selection
    train_limit: int | None = None  # keep only the first N training samples (after the split)
    seed: int = 1  # seeds the validation split

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(
                f"dataset: expected one of {', '.join(DATASETS)}, got {self.dataset!r}"
            )
        if self.val_size < 0:  # 0 only for a final run, which trains on every image
            raise ValueError(f"val_size: expected a positive count, got {self.val_size}")
        if self.train_limit is not None and self.train_limit < 1:
            raise ValueError(f"train_limit: expected a positive count, got {self.train_limit}")


def raw_folder(cfg: DataConfig) -> Path:
    """The folder the dataset's four files are read from: DATA_DIR/MNIST/raw for MNIST."""
    return Path(cfg.data_dir) / DATASETS[cfg.dataset][1] / "raw"


def expected(cfg: DataConfig) -> str:
    return f"{raw_folder(cfg)} (expected {', '.join(RAW_FILES)})"


def holds_raw_files(folder: Path) -> bool:
    # os.path, not Path: a folder that cannot be searched is one without the files, not an error
    return all(os.path.isfile(folder / name) for name in RAW_FILES)


def refuse_misplaced(cfg: DataConfig) -> None:
    """A --data-dir that points at the raw files themselves (DATA/MNIST/raw) or at the dataset's
    folder (DATA/MNIST) is a slip: name the folder meant, rather than download a second copy."""
    given = Path(cfg.data_dir)
    for holder in (given, given / "raw"):
        if not holds_raw_files(holder):
            continue
        folder = DATASETS[cfg.dataset][1]
        if holder.name == "raw" and holder.parent.name == folder:
            fix = f"did you mean {holder.parent.parent}?"
        else:  # the files are there, but not in the layout torchvision and we read
            target, layout = raw_folder(cfg), f"{folder}/raw"
            fix = f"move them into {target}, or point --data-dir at a folder holding {layout}"
        raise DataError(
            f"data_dir {given}: {cfg.dataset} is not in {expected(cfg)}, but {holder} holds "
            f"those files; {fix}"
        )
