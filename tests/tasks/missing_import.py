"""Raises while it is imported: it imports a package that is not installed."""

from __future__ import annotations

from typing import Any

import no_such_package_for_search_tests  # noqa: F401

SPACE = "broken.toml"


def train(params: dict[str, Any], ctx: Any) -> dict[str, float]:
    return {"val_loss": 1.0}
