"""Summary: the end-of-run table, computed as plain rows first and then formatted as text."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.space import Space


def summary_rows(study: optuna.Study, space: Space) -> list[dict[str, Any]]:
    """One row per finished or failed trial, in trial order."""
    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return rows_for_trials(study.get_trials(deepcopy=False, states=states), space)


def rows_for_trials(trials: list[FrozenTrial], space: Space) -> list[dict[str, Any]]:
    rows = []
    for t in trials:
        history = t.user_attrs.get("history") or []
        best = max(history, key=lambda r: (r["val_acc"], -r["epoch"]), default=None)
        rows.append(
            {
                "trial": t.number,
                "differs": space.differs_from_baseline(t.params) if t.params else "",
                "val_acc": best["val_acc"] if best else None,
                "test_acc": best["test_acc"] if best else None,
                "seconds": t.user_attrs.get("seconds"),
                "state": t.state.name,
                "note": t.user_attrs.get("reason") or t.user_attrs.get("fail_reason") or "",
            }
        )
    return rows


def pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.2%}"


def format_table(rows: list[dict[str, Any]]) -> str:
    header = ("trial", "differs from baseline", "best val acc", "test acc", "seconds", "state")
    body = [
        (
            str(r["trial"]),
            r["differs"],
            pct(r["val_acc"]),
            pct(r["test_acc"]),
            "-" if r["seconds"] is None else f"{r['seconds']:.1f}",
            r["state"] + (f" ({r['note']})" if r["note"] else ""),
        )
        for r in rows
    ]
    widths = [
        max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(b, widths, strict=True)) for b in body]
    return "\n".join(line.rstrip() for line in lines)
