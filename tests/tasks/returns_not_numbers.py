"""Its train returns None, or a dict holding text or a list, not a dict of numbers."""

from __future__ import annotations

from typing import Any

RETURNED: dict[str, Any] = {
    "none": None,
    "text": {"val_loss": "low"},
    "list": {"val_loss": [0.25, 0.5]},
}


def train(params: dict[str, Any], ctx: Any) -> Any:
    ctx.report(1, val_loss=0.5)
    return RETURNED[params["returns"]]
