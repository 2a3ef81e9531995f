"""Summary: the end-of-run tables, computed as plain rows first and then formatted as text.

A grid study lists every point in order with what differs from the baseline; a sampler's study
lists its best trials with all their parameters; a multi-objective study its Pareto front.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.study.queries import state_counts
from search.study.runner import RunnerConfig, study_seconds
from search.study.samplers import startup_note
from search.study.settings import StudySettings
from search.study.space import Space
from search.study.trials import judge_of, judged_epoch, note_of, pct

BEST_SHOWN = 10  # rows of a sampler's summary
STATE_WORDS = {
    "COMPLETE": "complete",
    "PRUNED": "pruned",
    "FAIL": "failed",
    "RUNNING": "running",
    "WAITING": "waiting",
}


def rows_for_trials(trials: list[FrozenTrial], space: Space) -> list[dict[str, Any]]:
    """One row per trial: what it is, and its accuracies at the epoch it is judged by."""
    rows = []
    for t in trials:
        best = judged_epoch(t)
        rows.append(
            {
                "trial": t.number,
                "params": space.describe(t.params) if t.params else "",
                "val_acc": best.val_acc if best else None,
                "test_acc": best.test_acc if best else None,
                "epochs": len(t.user_attrs.get("history") or []) if t.params else None,
                "train_images": t.user_attrs.get("train_images"),
                "seconds": t.user_attrs.get("seconds"),
                "n_params": t.user_attrs.get("n_params"),
                "state": t.state.name,
                "note": note_of(t),
                "judge": judge_of(t),
            }
        )
    return rows


def summary_rows(study: optuna.Study, space: Space) -> list[dict[str, Any]]:
    """A grid: every finished or failed trial in order. A sampler: its best trials first."""
    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    trials = study.get_trials(deepcopy=False, states=states)
    if not space.is_grid:
        trials = sorted(
            (t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: -t.values[0]
        )[:BEST_SHOWN]
    return rows_for_trials(trials, space)


def pareto_rows(study: optuna.Study, space: Space) -> list[dict[str, Any]]:
    """The Pareto-optimal trials of a multi-objective study, most accurate first."""
    front = sorted(study.best_trials, key=lambda t: -t.values[0])
    return rows_for_trials(front, space)


def format_table(
    rows: list[dict[str, Any]], label: str = "parameters", extra: str | None = None
) -> str:
    """Rows as aligned text; ``extra="params"`` adds the parameter count column."""
    judges = {r["judge"] for r in rows}
    val = f"{judges.pop()} val acc" if len(judges) == 1 else "val acc"  # the epoch judged
    header = ["trial", label, "epochs", val, "test acc", "seconds", "state"]
    if extra == "params":
        header.insert(6, "params")
    body = []
    for r in rows:
        cells = [
            str(r["trial"]),
            r["params"],
            "-" if r["epochs"] is None else str(r["epochs"]),
            pct(r["val_acc"]),
            pct(r["test_acc"]),
            "-" if r["seconds"] is None else f"{r['seconds']:.1f}",
            r["state"] + (f" ({r['note']})" if r["note"] else ""),
        ]
        if extra == "params":
            cells.insert(6, str(r["n_params"]))
        body.append(cells)
    if not body:
        return "no finished trials yet"
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(b, widths, strict=True)) for b in body]
    return "\n".join(line.rstrip() for line in lines)


def counts_line(study: optuna.Study) -> str:
    """How many trials ended each way: "15 trials: 12 complete, 2 pruned, 1 failed"."""
    counts = state_counts(study)
    shown = [f"{counts[k]} {word}" for k, word in STATE_WORDS.items() if counts[k]]
    total = sum(counts.values())
    return f"{total} trial{'s' if total != 1 else ''}: {', '.join(shown) or 'none yet'}"


def run_line(settings: StudySettings, study: optuna.Study) -> str:
    """What every trial trained on, caps included: what ran, not what the space says."""
    images = next(
        (
            t.user_attrs["train_images"]
            for t in study.get_trials(deepcopy=False)
            if "train_images" in t.user_attrs
        ),
        None,
    )
    text = f"trained on {settings.dataset}: " + (
        f"{images:,} training images" if images else "its training images"
    )
    if settings.train_limit is not None:
        text += f" (--train-limit {settings.train_limit})"
    text += f", {settings.val_size:,} held out for validation"
    if settings.max_epochs is not None:
        n = settings.max_epochs
        text += f"; at most {n} epoch{'s' if n > 1 else ''} a trial (--max-epochs)"
    return text


def study_summary(study: optuna.Study, space: Space, settings: StudySettings) -> str:
    """The table a run ends with (a grid's points, a sampler's best, or a Pareto front), after
    what the trials trained on and how many ended each way."""
    label = "differs from baseline" if space.grid == "ofat" else "parameters"
    lines = [run_line(settings, study), counts_line(study)]
    startup = startup_note(study, settings.sampler).strip(" ()")
    if startup:
        lines.append(f"note: {startup}: so far its trials are random ones, as any sampler's")
    objectives = settings.objectives
    if len(objectives) > 1:
        table = format_table(pareto_rows(study, space), label, extra=objectives[1])
        return "\n".join([*lines, f"Pareto front ({', '.join(objectives)}):", table])
    return "\n".join([*lines, format_table(summary_rows(study, space), label)])


def nothing_to_run(study: optuna.Study, space: Space, budget: RunnerConfig) -> str:
    """Why a resumed study runs no trial, and how to run more."""
    if budget.timeout is not None and study_seconds(study) >= budget.timeout:
        why = f"its --timeout of {budget.timeout:g} s of trial time is used up"
    elif space.is_grid and budget.n_trials is None:
        why = "every point of its grid is done"
    else:
        why = f"its budget of {budget.n_trials} trials is used (failed ones count)"
    return f"nothing to run: study {study.study_name}: {why}; give a larger budget to run more"


def final_rows(record: dict) -> list[dict[str, Any]]:
    """The final step's configurations (``search.final``), as recorded, in rank order."""
    return [
        {
            "rank": rank,
            "trial": c["trial"],
            "val_acc": c["val_accuracy"],
            "test_mean": c["mean"],
            "test_std": c["std"],
            "test_accs": c["test_acc"],
            "seconds": c["seconds"],
        }
        for rank, c in enumerate(record.get("configs", []), start=1)
    ]


def format_final(record: dict) -> str:
    """The final step as text: one line per configuration, then where the weights are."""
    rows = final_rows(record)
    seeds = len(rows[0]["test_accs"]) if rows else 0
    lines = [
        f"final: the {len(rows)} best configurations by validation accuracy, {seeds} seeds "
        f"each, trained on {record.get('train_images', 'all')} training images; test read once "
        "per model"
    ]
    for r in rows:
        spread = "" if r["test_std"] is None else f" ± {r['test_std']:.2%}"
        each = " ".join(pct(a) for a in r["test_accs"])
        lines.append(
            f"  {r['rank']}. trial {r['trial']}: val {pct(r['val_acc'])}, test "
            f"{pct(r['test_mean'])}{spread} (seeds: {each}; {r['seconds']:.0f} s)"
        )
    weights = record.get("weights")
    if weights:
        lines.append(
            f"weights of trial {weights['trial']} (seed {weights['seed']}): artifact "
            f"{weights['artifact_id']} at {weights['path']} ({weights['format']})"
        )
    return "\n".join(lines)
