"""Data stage: MNIST-style datasets loaded once per process into normalised tensors.

Images become float32 rows of 784 normalised pixels on the chosen device; a seeded validation
split is carved out of the training set, so the test set is only ever reported, never used to
choose anything. Absent files are downloaded first (``search.engine.download``).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

import torch

from search.engine.datasets import (
    DATASETS,
    DataConfig,
    expected,
    holds_raw_files,
    raw_folder,
    refuse_misplaced,
)
from search.engine.download import download
from search.errors import DataError, first_line

IMAGE_SIDE = 28
N_CLASSES = 10


@dataclass(frozen=True)
class Splits:
    """Normalised images (N x 784, float32) and labels (N, int64), all on one device."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor

    @property
    def device(self) -> torch.device:
        return self.train_x.device


def read_idx(path: Path) -> torch.Tensor:
    """An IDX file of unsigned bytes (MNIST's format, http://yann.lecun.com/exdb/mnist/):
    two zero bytes, type 0x08, the number of dimensions, each as a big-endian uint32, data."""
    raw = path.read_bytes()
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path.name} is not an IDX file of bytes")
    header = 4 + 4 * raw[3]
    if len(raw) < header:
        raise ValueError(f"{path.name} is truncated in its header")
    dims = struct.unpack(f">{raw[3]}I", raw[4:header])
    size = math.prod(dims)
    if len(raw) - header != size:
        raise ValueError(f"{path.name} holds {len(raw) - header} bytes, expected {size}")
    return torch.frombuffer(bytearray(raw[header:]), dtype=torch.uint8).reshape(dims)


def _read(cfg: DataConfig, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    raw = raw_folder(cfg)
    if not holds_raw_files(raw):
        refuse_misplaced(cfg)
        download(cfg)
    prefix = "train" if train else "t10k"
    try:
        images = read_idx(raw / f"{prefix}-images-idx3-ubyte")
        labels = read_idx(raw / f"{prefix}-labels-idx1-ubyte")
    except Exception as e:  # noqa: BLE001 - any failure here means the files are unusable
        reason = first_line(e) or type(e).__name__
        raise DataError(f"{cfg.dataset} could not be read from {expected(cfg)}: {reason}") from e
    if (
        images.dim() != 3
        or tuple(images.shape[1:]) != (IMAGE_SIDE, IMAGE_SIDE)
        or labels.dim() != 1
        or len(images) != len(labels)
        or len(images) == 0
        or int(labels.min()) < 0
        or int(labels.max()) >= N_CLASSES
    ):
        raise DataError(f"{cfg.dataset} files are damaged in {expected(cfg)}")
    return images, labels


def load(cfg: DataConfig, device: torch.device | str = "cpu") -> Splits:
    """Read the dataset (downloading it if absent), normalise it and split off validation."""
    mean, std = DATASETS[cfg.dataset][2:]
    train_img, train_lab = _read(cfg, train=True)
    test_img, test_lab = _read(cfg, train=False)
    if cfg.val_size >= len(train_img):
        raise ValueError(
            f"val_size: expected fewer than the {len(train_img)} training samples, "
            f"got {cfg.val_size}"
        )

    def norm(images: torch.Tensor) -> torch.Tensor:
        x = images.reshape(len(images), IMAGE_SIDE * IMAGE_SIDE).to(torch.float32).div_(255.0)
        return x.sub_(mean).div_(std).to(device)

    perm = torch.randperm(len(train_img), generator=torch.Generator().manual_seed(cfg.seed))
    val_idx, train_idx = perm[: cfg.val_size], perm[cfg.val_size :].sort().values
    if cfg.train_limit is not None:
        train_idx = train_idx[: cfg.train_limit]
    return Splits(
        train_x=norm(train_img[train_idx]),
        train_y=train_lab[train_idx].to(torch.int64).to(device),
        val_x=norm(train_img[val_idx]),
        val_y=train_lab[val_idx].to(torch.int64).to(device),
        test_x=norm(test_img),
        test_y=test_lab.to(torch.int64).to(device),
    )
