from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from search.engine.data import DataConfig, load
from search.errors import DataError, UsageError

from .conftest import make_dataset


def test_load_normalises_images_into_rows_of_784_floats(tiny_splits):
    assert tiny_splits.train_x.shape == (1000, 784)
    assert tiny_splits.train_x.dtype == torch.float32
    assert tiny_splits.train_y.dtype == torch.int64
    assert tiny_splits.test_x.shape == (300, 784)
    # (0 / 255 - 0.1307) / 0.3081 is the smallest value a normalised pixel can take
    assert tiny_splits.train_x.min().item() == pytest.approx(-0.1307 / 0.3081, abs=1e-5)


def test_validation_split_is_disjoint_and_repeats_for_the_same_seed(tiny_root):
    a = load(DataConfig(data_dir=str(tiny_root), val_size=200, seed=3))
    b = load(DataConfig(data_dir=str(tiny_root), val_size=200, seed=3))
    c = load(DataConfig(data_dir=str(tiny_root), val_size=200, seed=4))
    assert torch.equal(a.val_x, b.val_x)
    assert not torch.equal(a.val_x, c.val_x)
    train_rows = {tuple(r) for r in a.train_x[:, :60].tolist()}
    assert len(a.val_x) == 200 and len(a.train_x) == 1000
    assert not any(tuple(r) in train_rows for r in a.val_x[:, :60].tolist())


def test_train_limit_keeps_only_the_first_training_samples(tiny_root):
    full = load(DataConfig(data_dir=str(tiny_root), val_size=200))
    limited = load(DataConfig(data_dir=str(tiny_root), val_size=200, train_limit=100))
    assert torch.equal(limited.train_x, full.train_x[:100])


def test_other_datasets_load_through_the_same_code(tmp_path):
    make_dataset(tmp_path, folder="FashionMNIST")
    splits = load(DataConfig(dataset="fashion-mnist", data_dir=str(tmp_path), val_size=100))
    assert splits.train_x.shape == (1100, 784)


def test_truncated_file_is_one_error_naming_the_folder_and_files(tmp_path):
    root = make_dataset(tmp_path)
    images = root / "MNIST" / "raw" / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:5000])
    with pytest.raises(DataError) as err:
        load(DataConfig(data_dir=str(root), val_size=100))
    message = str(err.value)
    assert str(root / "MNIST" / "raw") in message and "train-images-idx3-ubyte" in message
    assert "\n" not in message


def test_absent_data_that_cannot_be_downloaded_is_one_error(tmp_path):
    with pytest.raises(DataError, match="could not be downloaded from .*MNIST/raw"):
        load(DataConfig(data_dir=str(tmp_path / "nowhere")))


def test_unknown_dataset_is_a_usage_error():
    with pytest.raises(UsageError, match="--dataset"):
        DataConfig(dataset="cifar")


def test_validation_split_larger_than_the_data_is_a_usage_error(tiny_root: Path):
    with pytest.raises(UsageError, match="--val-size"):
        load(DataConfig(data_dir=str(tiny_root), val_size=5000))


def test_data_that_must_be_downloaded_without_torchvision_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # as if search[download] were absent
    with pytest.raises(DataError) as err:
        load(DataConfig(data_dir=str(tmp_path)))
    assert "search[download]" in str(err.value) and "MNIST/raw" in str(err.value)
