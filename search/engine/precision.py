"""Which precision a run's matrix products use: ``auto`` is bf16 where the device is fast at it.

A CPU multiplies bf16 fast with AVX512_BF16 or AMX (about 2.5x fp32 on 2 cores of an AMD EPYC
with AVX512_BF16, issue 23's table); without them torch emulates bf16 and is slower than fp32.
A CUDA GPU is fast at bf16 when ``torch.cuda.is_bf16_supported()``. ``SEARCH_FAST_BF16=0`` (or
1) overrides the detection: the tests force it off, and a user can on a CPU the flags miss.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch

from search.engine.config import PRECISION_SETTINGS as PRECISIONS

CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo's names for fast bf16 products
OVERRIDE_ENV = "SEARCH_FAST_BF16"


@functools.cache  # the CPU's flags do not change while a process runs
def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags (Linux); none where /proc/cpuinfo is not there."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    line = next((x for x in text.splitlines() if x.startswith("flags")), "")
    return frozenset(line.partition(":")[2].split())


def fast_bf16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bf16 matrices faster than fp32 ones."""
    forced = os.environ.get(OVERRIDE_ENV)
    if forced in ("0", "1"):
        return forced == "1"
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(cpu_flags() & set(CPU_FLAGS))
    return False


def resolve(precision: str, device: torch.device) -> tuple[str, str]:
    """(``fp32`` or ``bf16``, why) for a study's ``precision`` on ``device``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision: expected one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision, f"{precision} as asked"
    if fast_bf16(device):
        return "bf16", f"auto: bf16 products, {device.type} multiplies bf16 fast"
    return "fp32", f"auto: fp32, {device.type} has no fast bf16 products (AVX512_BF16 or AMX)"
