from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import pytest
import torch

from search.cli import as_option
from search.engine.data import DataConfig, load
from search.engine.datasets import RAW_FILES
from search.errors import DataError

from .helpers import make_dataset


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


def fail_if_downloaded(monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets as tvd

    def refuse(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(tvd, "MNIST", refuse)


def fake_download(monkeypatch: pytest.MonkeyPatch, fail: BaseException | None = None) -> None:
    """torchvision's MNIST as if the network answered: the four files appear in ROOT/MNIST/raw
    (then ``fail``, if given, is raised, as by a download cut short)."""
    import torchvision.datasets as tvd

    def download(root: str, train: bool, download: bool) -> None:
        make_dataset(Path(root))
        if fail is not None:
            raise fail

    monkeypatch.setattr(tvd, "MNIST", download)


@pytest.mark.parametrize("data_dir", ["nowhere", "nowhere/deeper", "."])
def test_absent_data_that_cannot_be_downloaded_is_one_error_and_creates_nothing(
    tmp_path, monkeypatch, data_dir
):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as err:
        load(DataConfig(data_dir=data_dir))
    message = str(err.value)
    assert message.startswith(f"data_dir {data_dir}: mnist is not in ")  # the field, not a flag
    assert str(Path(data_dir) / "MNIST" / "raw") in message
    assert all(name in message for name in RAW_FILES)
    # the closed port of the no_downloads fixture: the reason, not torchvision's empty heading
    assert "download failed (train-images-idx3-ubyte.gz: [Errno 111] Connection refused; no " in (
        message
    )
    assert message.endswith(
        "point --data-dir (or SEARCH_DATA_DIR) at the folder that holds MNIST/raw"
    )
    assert "\n" not in message and err.value.exit_code == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("fail", "reason"),
    [
        (
            RuntimeError(
                "Error downloading t10k-labels-idx1-ubyte.gz:\nTried http://m/, got:\n"
                "<urlopen error [Errno -2] Name or service not known>\n"
            ),
            "(t10k-labels-idx1-ubyte.gz: [Errno -2] Name or service not known; no network?)",
        ),
        (RuntimeError("File not found or corrupted."), "(File not found or corrupted.)"),
        (OSError(), "(OSError)"),
        (TimeoutError("timed out"), "(timed out; no network?)"),
    ],
)
def test_a_download_that_fails_half_way_leaves_nothing_and_says_why(
    tmp_path, monkeypatch, fail, reason
):
    fake_download(monkeypatch, fail=fail)
    with pytest.raises(DataError) as err:
        load(DataConfig(data_dir=str(tmp_path / "data")))
    assert f"the download failed {reason};" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_a_download_puts_the_four_files_into_the_data_folder(tmp_path, monkeypatch):
    fake_download(monkeypatch)
    splits = load(DataConfig(data_dir=str(tmp_path / "data"), val_size=100))
    assert splits.train_x.shape == (1100, 784) and splits.test_x.shape == (300, 784)
    assert sorted(p.name for p in (tmp_path / "data").rglob("*")) == sorted(
        ["MNIST", "raw", *RAW_FILES]
    )


def test_a_download_that_cannot_be_written_into_the_data_folder_leaves_nothing(
    tmp_path, monkeypatch
):
    import search.engine.download as data

    fake_download(monkeypatch)
    real_replace, moved = os.replace, []

    def replace(src, dst):  # the disk fills up on the third file
        if len(moved) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        moved.append(dst)
        real_replace(src, dst)

    monkeypatch.setattr(data.os, "replace", replace)
    with pytest.raises(DataError) as err:
        load(DataConfig(data_dir=str(tmp_path / "data")))
    assert str(err.value) == (
        f"data_dir {tmp_path / 'data'}: mnist was downloaded but cannot be written into "
        f"{tmp_path / 'data' / 'MNIST' / 'raw'} (no space left on device); point --data-dir (or "
        "SEARCH_DATA_DIR) at a folder you can write to"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("below", ["MNIST/raw", "MNIST", "MNIST/raw/"])
def test_a_data_dir_pointing_into_the_dataset_names_the_folder_meant(
    tiny_root, monkeypatch, below
):
    fail_if_downloaded(monkeypatch)
    given = f"{tiny_root}/{below}"
    with pytest.raises(DataError) as err:
        load(DataConfig(data_dir=given))
    message = str(err.value)
    assert message.startswith(f"data_dir {Path(given)}: mnist is not in ")  # its field
    assert message.endswith(f"did you mean {tiny_root}?")
    assert "\n" not in message and err.value.exit_code == 1
    assert not (tiny_root / "MNIST" / "MNIST").exists()
    assert not (tiny_root / "MNIST" / "raw" / "MNIST").exists()


def test_the_four_files_in_a_folder_of_another_name_are_found_but_not_moved(tmp_path, monkeypatch):
    fail_if_downloaded(monkeypatch)
    make_dataset(tmp_path, folder="downloads")  # tmp/downloads/raw/...
    with pytest.raises(DataError) as err:
        load(DataConfig(data_dir=str(tmp_path / "downloads")))
    assert str(err.value).endswith(
        f"but {tmp_path / 'downloads' / 'raw'} holds those files; move them into "
        f"{tmp_path / 'downloads' / 'MNIST' / 'raw'}, or point --data-dir at a folder holding "
        "MNIST/raw"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["downloads"]


def test_unknown_dataset_is_a_value_error_naming_the_field():
    with pytest.raises(ValueError, match="^dataset: "):
        DataConfig(dataset="cifar")


def test_validation_split_larger_than_the_data_is_a_value_error_naming_the_field(
    tiny_root: Path,
):
    with pytest.raises(ValueError, match="^val_size: "):
        load(DataConfig(data_dir=str(tiny_root), val_size=5000))


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("val_size: expected fewer", "--val-size: expected fewer"),
        ("data_dir /x: mnist is not in", "--data-dir /x: mnist is not in"),
        ("hidden: expected positive", None),  # not an option: a space's parameter
    ],
)
def test_the_command_line_names_the_option_of_an_engine_field(given, shown):
    assert as_option(given) == shown


def test_data_that_must_be_downloaded_without_torchvision_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # as if search[download] were absent
    with pytest.raises(DataError) as err:
        load(DataConfig(data_dir=str(tmp_path)))
    assert "search[download]" in str(err.value) and "MNIST/raw" in str(err.value)
