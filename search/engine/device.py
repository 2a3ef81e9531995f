"""Which device a run trains on, and how local workers share the GPUs."""

from __future__ import annotations

import torch

DEVICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str) -> torch.device:
    """``auto`` is the first of CUDA, MPS and the CPU that this machine has."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": torch.backends.mps.is_available(),
    }
    if name not in available:
        raise ValueError(f"device: expected one of {', '.join(DEVICES)}, got {name!r}")
    if not available[name]:
        raise ValueError(f"device: {name} is not available on this machine; use auto")
    return torch.device(name)


def split_devices(device: str, n: int) -> list[str]:
    """Worker i gets cuda:(i mod k) with k GPUs; every worker shares a CPU or MPS device."""
    if device.startswith("cuda") and torch.cuda.device_count() > 1:
        return [f"cuda:{i % torch.cuda.device_count()}" for i in range(n)]
    return [device] * n
