"""Integration tests on the real MNIST found through SEARCH_DATA_DIR (skipped without it)."""

from __future__ import annotations

import pytest

from search.engine.config import ModelConfig, TrainConfig
from search.engine.data import DataConfig, load
from search.engine.train import fit

pytestmark = pytest.mark.slow


def test_one_epoch_of_the_baseline_reaches_95_percent_on_the_test_set(real_root):
    splits = load(DataConfig(data_dir=str(real_root)))
    assert len(splits.train_x) == 55_000 and len(splits.test_x) == 10_000
    result = fit(ModelConfig(), TrainConfig(epochs=1), splits)
    assert result.history[0].test_acc >= 0.95
