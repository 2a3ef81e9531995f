"""The final step's record (``search.final``) as rows and as text.

Rows first (one per configuration: the headline metric per seed, its mean and spread), then
the text ``search.final``, ``search.report`` and the dashboard note show. Records from before
the final step kept several metrics held the test accuracy alone; they read the same.
"""

from __future__ import annotations

from typing import Any

from search.study.storage.trials import shown


def final_rows(record: dict) -> list[dict[str, Any]]:
    """The final step's configurations (``search.final``), as recorded, in rank order: the
    headline metric's value per seed, mean and spread (records from before several metrics
    held the test accuracy alone)."""
    metric = record.get("metric", "test_acc")
    rows = []
    for rank, c in enumerate(record.get("configs", []), start=1):
        per_seed = c["metrics"].get(metric, []) if "metrics" in c else c["test_acc"]
        mean = c["mean"].get(metric) if isinstance(c["mean"], dict) else c["mean"]
        std = c["std"].get(metric) if isinstance(c["std"], dict) else c["std"]
        rows.append(
            {
                "rank": rank,
                "trial": c["trial"],
                "value": c.get("value", c.get("val_accuracy")),
                "metric": metric,
                "mean": mean,
                "std": std if len(per_seed) > 1 else None,
                "per_seed": per_seed,
                "seconds": c["seconds"],
            }
        )
    return rows


def caps_text(record: dict) -> str:
    """What the final models trained on, and why not all of it: the study's caps."""
    images = record.get("train_images", "all")
    caps = record.get("caps") or {}
    text = f"trained on {images if images == 'all' else f'{images:,}'} training examples"
    why = []
    if caps.get("train_limit") is not None:
        why.append(f"--train-limit {caps['train_limit']}")
    if caps.get("max_epochs") is not None:
        why.append(f"--max-epochs {caps['max_epochs']}")
    if why:
        text += f" (the study's caps: {', '.join(why)}; a study without them trains on all)"
    return text


def format_final(record: dict) -> str:
    """The final step as text: what it trained on, one line per configuration, the weights."""
    rows = final_rows(record)
    seeds = len(rows[0]["per_seed"]) if rows else 0
    chosen_by = record.get("chosen_by", "validation accuracy")
    metric = record.get("metric", "test_acc")
    lines = [
        f"final: {caps_text(record)}; the {len(rows)} best configuration"
        f"{'s' if len(rows) != 1 else ''} by {chosen_by}, {seeds} seed{'s' if seeds != 1 else ''}"
        f" each; test read once per model"
    ]
    for r in rows:
        spread = "" if r["std"] is None else f" ± {shown(metric, r['std'])}"
        each = " ".join(shown(metric, a) for a in r["per_seed"])
        lines.append(
            f"  {r['rank']}. trial {r['trial']}: {chosen_by} {shown(chosen_by, r['value'])}, "
            f"{metric} {shown(metric, r['mean'])}{spread} (seeds: {each}; {r['seconds']:.0f} s)"
        )
    weights = record.get("weights")
    if weights:
        lines.append(
            f"weights of trial {weights['trial']} (seed {weights['seed']}): artifact "
            f"{weights['artifact_id']} at {weights['path']} ({weights['format']})"
        )
    elif rows:
        lines.append("no weights kept: the task does not call ctx.save_weights(model)")
    return "\n".join(lines)
