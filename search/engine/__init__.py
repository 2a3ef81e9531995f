"""The engine: datasets into tensors, the MLP, its optimizers and the one training loop.

Pure PyTorch (plus numba for the CPU's compiled kernels). It knows nothing of Optuna, of
studies or of reports: ``fit(ModelConfig, TrainConfig, Splits)`` trains one network and returns
what happened. ``config`` and ``history`` import no torch, so the layers above can read names,
configurations and learning histories without paying torch's import time.
"""
