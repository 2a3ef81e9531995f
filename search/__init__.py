"""Optuna hyperparameter search service for PyTorch (see README.md)."""

__version__ = "0.1.0"
