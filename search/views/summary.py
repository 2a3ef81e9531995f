"""Summary: the end-of-run tables, computed as plain rows first and then formatted as text.

A grid study lists every point in order with what differs from the baseline; a sampler's study
lists its best trials with all their parameters; a multi-objective study its Pareto front.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from search.study.running.budget import RunnerConfig, study_seconds
from search.study.space.samplers import startup_note
from search.study.space.space import Space
from search.study.storage import records
from search.study.storage.settings import StudySettings
from search.study.storage.trials import (
    TIMING,
    final_metrics,
    judge_of,
    ranked,
    shown,
    state_counts,
)

BEST_SHOWN = 10  # rows of a sampler's summary
EXTRA_METRICS = 3  # metrics a task returned beyond its objectives, shown in a summary
STATE_WORDS = {
    "COMPLETE": "complete",
    "PRUNED": "pruned",
    "FAIL": "failed",
    "RUNNING": "running",
    "WAITING": "waiting",
}


PARAMS_WIDTH = 60  # characters of a row's parameters in a table; the best's are written out


def rows_for_trials(trials: list[FrozenTrial], space: Space) -> list[dict[str, Any]]:
    """One row per trial: what it is, and the metrics it ended with (the MLP: its judged
    epoch's accuracies)."""
    rows = []
    for t in trials:
        metrics = final_metrics(t)
        rows.append(
            {
                "trial": t.number,
                "params": space.describe(t.params) if t.params else "",
                "metrics": metrics,
                "val_acc": metrics.get("val_acc"),
                "test_acc": metrics.get("test_acc"),
                "epochs": records.small(t, records.EPOCHS_RUN) if t.params else None,
                "train_images": records.small(t, records.TRAIN_IMAGES),
                "seconds": records.small(t, records.SECONDS),
                "n_params": records.small(t, records.N_PARAMS),
                "state": t.state.name,
                "note": records.note_of(t),
                "judge": judge_of(t),
            }
        )
    return rows


def summary_rows(study: optuna.Study, space: Space) -> list[dict[str, Any]]:
    """A grid: every finished or failed trial in order. A sampler: its best trials first."""
    if not space.is_grid:
        return rows_for_trials(ranked(study)[:BEST_SHOWN], space)
    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return rows_for_trials(study.get_trials(deepcopy=False, states=states), space)


def pareto_rows(study: optuna.Study, space: Space) -> list[dict[str, Any]]:
    """The Pareto-optimal trials of a multi-objective study, best by the first first."""
    sign = -1 if study.directions[0] == StudyDirection.MAXIMIZE else 1
    front = sorted(study.best_trials, key=lambda t: (sign * t.values[0], t.number))
    return rows_for_trials(front, space)


def metric_columns(
    rows: list[dict[str, Any]], settings: StudySettings | None
) -> list[tuple[str, str]]:
    """(header, metric) of a table's metric columns: the MLP's judged validation and test
    accuracy; a task's objectives, then up to ``EXTRA_METRICS`` more it returned."""
    if settings is None or settings.built_in:
        judges = {r["judge"] for r in rows}
        val = f"{judges.pop()} val acc" if len(judges) == 1 else "val acc"  # the epoch judged
        return [(val, "val_acc"), ("test acc", "test_acc")]
    names = [metric for metric, _ in settings.objective_metrics() if metric != "seconds"]
    others = dict.fromkeys(k for r in rows for k in r["metrics"] if k not in (*names, *TIMING))
    return [(n, n) for n in names + list(others)[:EXTRA_METRICS]]


def format_table(
    rows: list[dict[str, Any]],
    label: str = "parameters",
    extra: str | None = None,
    columns: list[tuple[str, str]] | None = None,
) -> str:
    """Rows as aligned text; ``extra="params"`` adds the parameter count column."""
    columns = columns or metric_columns(rows, None)
    header = ["trial", label, "epochs", *(h for h, _ in columns), "seconds", "state"]
    if extra == "params":
        header.insert(-1, "params")
    body = []
    for r in rows:
        params = r["params"]
        cells = [
            str(r["trial"]),
            params if len(params) <= PARAMS_WIDTH else params[: PARAMS_WIDTH - 3] + "...",
            "-" if r["epochs"] is None else str(r["epochs"]),
            *(shown(m, r["metrics"].get(m)) for _, m in columns),
            "-" if r["seconds"] is None else f"{r['seconds']:.1f}",
            r["state"] + (f" ({r['note']})" if r["note"] else ""),
        ]
        if extra == "params":
            cells.insert(-1, str(r["n_params"]))
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
    if not settings.built_in:
        text = f"task {settings.task}"
        if settings.train_limit is not None:
            text += f": at most {settings.train_limit:,} training examples (--train-limit)"
    else:
        images = next(
            (
                records.small(t, records.TRAIN_IMAGES)
                for t in study.get_trials(deepcopy=False)
                if records.small(t, records.TRAIN_IMAGES)
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
    if settings.precision not in (None, "fp32"):
        text += f"; --precision {settings.precision}"
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
        rows = pareto_rows(study, space)
        extra = "params" if objectives[1] == "params" else None
        table = format_table(rows, label, extra, metric_columns(rows, settings))
        return "\n".join([*lines, f"Pareto front ({', '.join(objectives)}):", table])
    rows = summary_rows(study, space)
    lines.append(format_table(rows, label, columns=metric_columns(rows, settings)))
    if not space.is_grid and rows and len(rows[0]["params"]) > PARAMS_WIDTH:
        lines.append(f"best, trial {rows[0]['trial']}: {rows[0]['params']}")
    return "\n".join(lines)


def nothing_to_run(study: optuna.Study, space: Space, budget: RunnerConfig) -> str:
    """Why a resumed study runs no trial, and how to run more."""
    if budget.timeout is not None and study_seconds(study) >= budget.timeout:
        why = f"its --timeout of {budget.timeout:g} s of trial time is used up"
    elif space.is_grid and budget.n_trials is None:
        why = "every point of its grid is done"
    else:
        why = f"its budget of {budget.n_trials} trials is used (failed ones count)"
    return f"nothing to run: study {study.study_name}: {why}; give a larger budget to run more"
