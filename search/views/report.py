"""Reports of a study: an index page to open, one page per chart, and its trials as tables.

``write_report`` writes ``index.html`` (the study's counts, its trials as a table, the best
trial, the final step's models and every chart inline), one page per chart under a short stable
name (``history.html``, ``factor-lr.html``, ...; ``CHART_TITLES`` maps each name to its title),
``summary.csv`` and ``summary.md``. plotly.js is written once beside them, so the folder works
offline. An ofat study gets the reference's figures, one page per factor, and an overview of the
factors' effects; every study gets Optuna's charts. The pages' contents are computed as plain
data first (``report_charts``, ``index_data``) and then drawn.
"""

from __future__ import annotations

import csv
import html
import importlib.util
import re
from collections import Counter
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState
from plotly.offline import get_plotlyjs

from search.errors import SearchError
from search.study.space.space import point_key
from search.study.storage import records
from search.study.storage.settings import StudySettings, stored_space
from search.study.storage.trials import ranked, shown
from search.views.charts import Chart, report_charts
from search.views.final import final_rows, format_final
from search.views.pages import PLOTLY_JS, chart_div, index_html, page
from search.views.summary import counts_line, metric_columns, rows_for_trials, run_line

PNG = "kaleido"  # the package Plotly needs to write PNG copies


def _settings(study: optuna.Study) -> StudySettings | None:
    stored = records.study_record(study, records.SETTINGS)
    return StudySettings.from_attr(stored) if stored else None


def summary_table(study: optuna.Study) -> list[dict]:
    """One row per trial, all parameters flat, then its metrics (the MLP: the judged epoch's
    accuracies); repeated runs of a grid point are marked."""
    return _summary(study)[0]


def _summary(study: optuna.Study) -> tuple[list[dict], list[str], list[str]]:
    """summary_table's rows, and its parameter and metric columns."""
    trials = study.get_trials(deepcopy=False)
    keys = [records.point_of(t) or point_key(t.params) for t in trials]
    runs = Counter(keys)
    params = sorted({k for t in trials for k in t.params})
    summaries = rows_for_trials(trials, stored_space(study))
    metrics = [m for _, m in metric_columns(summaries, _settings(study))]
    rows = []
    for t, key, row in zip(trials, keys, summaries, strict=True):
        others = [
            str(o.number) for o, k in zip(trials, keys, strict=True) if k == key and o is not t
        ]
        rows.append(
            {
                "trial": t.number,
                "state": t.state.name,
                **{n: t.params.get(n, "") for n in params},
                **{m: row["metrics"].get(m) for m in metrics},
                "judged_epoch": row["judge"],
                "epochs_run": row["epochs"],  # what ran: a cap or a pruner may stop it early
                "train_images": row["train_images"],
                "seconds": row["seconds"],
                "same_point_as": " ".join(others) if runs[key] > 1 else "",
            }
        )
    return rows, params, metrics


def folder_name(study_name: str) -> str:
    """A study's name as one safe folder name: letters, digits, ``.``, ``_`` and ``-`` only,
    never ``..`` or a leading dot, so ``reports/<name>`` cannot point outside ``reports/``."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", study_name).lstrip(".")
    return safe.replace("..", "_") or "study"


def _cell(value: Any, column: str = "") -> str:
    """One table cell as text: a metric as people read it (accuracies in percent), seconds to
    a tenth, parameters to 3 figures, a list (one value a seed) space-separated."""
    if value is None or value == "":
        return "-" if column and column not in ("same_point_as",) else ""
    if isinstance(value, list):
        return " ".join(_cell(v, column) for v in value)
    if column == "seconds":
        return f"{value:.1f}"
    if isinstance(value, float) and column:
        return shown(column, value)
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _final_table(record: dict) -> tuple[list[str], list[list[str]]]:
    """The final step's rows (``final_rows``) as a heading and text cells."""
    rows = final_rows(record)
    columns = list(rows[0]) if rows else []

    def metric(row: dict[str, Any], column: str) -> str:
        # The mean, spread and per-seed columns hold the row's metric; value is the one the
        # configurations were chosen by.
        if column in ("mean", "std", "per_seed"):
            return str(row.get("metric", "test_acc"))
        return record.get("chosen_by", "val_acc") if column == "value" else ""

    body = [[_cell(r[c], metric(r, c)) for c in columns] for r in rows]
    return [c.replace("_", " ") for c in columns], body


def _trials_table(
    rows: list[dict[str, Any]], params: list[str], metrics: list[str]
) -> tuple[list[str], list[list[str]]]:
    """The summary table as a heading and text cells: trial, state, each parameter, then the
    metrics (the MLP: its judged epoch's accuracies), the epochs run and the seconds."""
    judges = {r["judged_epoch"] for r in rows}
    columns = ["trial", "state", *params, *metrics, "epochs_run", "seconds"]
    if any(r["same_point_as"] for r in rows):
        columns.append("same_point_as")
    header = [c.replace("_", " ") for c in columns]
    if "val_acc" in columns and len(judges) == 1:  # the MLP: the last epoch, or the best
        header[columns.index("val_acc")] = f"val acc ({judges.pop()} epoch)"
    return header, [[_cell(r[c], c if c in (*metrics, "seconds") else "") for c in columns]
                    for r in rows]  # fmt: skip


def _best(
    study: optuna.Study, rows: list[dict[str, Any]], params: list[str], metrics: list[str]
) -> list[tuple[str, str]]:
    """The best trial by the first objective (of several: the best of the Pareto front by the
    first), as (label, value) pairs."""
    best = ranked(study)[0]
    row = next(r for r in rows if r["trial"] == best.number)
    shown_params = [k for k in params if row[k] != ""]
    return [
        ("trial", str(best.number)),
        ("parameters", ", ".join(f"{k}={_cell(row[k])}" for k in shown_params)),
        *((m.replace("_", " "), _cell(row[m], m)) for m in metrics),
        ("epochs run", _cell(row["epochs_run"])),
        ("seconds", _cell(row["seconds"], "seconds")),
    ]


def index_data(study: optuna.Study, charts: list[Chart], tables: list[str]) -> dict[str, Any]:
    """What ``index.html`` shows, as plain data: text lines and tables of text cells."""
    settings = _settings(study)
    rows, params, metrics = _summary(study)
    final = records.study_record(study, records.FINAL)
    multi = len(study.directions) > 1
    return {
        "name": study.study_name,
        "counts": counts_line(study),
        "run": run_line(settings, study) if settings else "",
        "tables": tables,
        "best_heading": "Best trial"
        if not multi
        else "Best on the Pareto front (first objective)",
        "best": _best(study, rows, params, metrics),
        "trials": _trials_table(rows, params, metrics),
        "final": _final_table(final) if final else None,
        "final_text": format_final(final) if final else "",
        "charts": [(key, title) for key, title, fig in charts if not isinstance(fig, str)],
        "not_drawn": [(title, fig) for _, title, fig in charts if isinstance(fig, str)],
    }


def write_report(study: optuna.Study, out: Path) -> list[Path]:
    """Write every page and table of the report; return the files written."""
    _require_a_completed_trial(study)
    charts = report_charts(study, stored_space(study))
    out.mkdir(parents=True, exist_ok=True)
    (out / PLOTLY_JS).write_text(get_plotlyjs(), encoding="utf-8")
    written, divs = [out / PLOTLY_JS], {}
    png = importlib.util.find_spec(PNG) is not None
    back = f"<p><a href='index.html'>&larr; index of study {html.escape(study.study_name)}</a></p>"
    for key, title, fig in charts:
        if isinstance(fig, str):
            continue
        divs[key] = chart_div(key, fig)
        path = out / f"{key}.html"
        path.write_text(page(title, back + divs[key]), encoding="utf-8")
        written.append(path)
        if png:
            fig.write_image(path.with_suffix(".png"))
    tables = _write_tables(study, out)
    data = index_data(study, charts, [p.name for p in tables])
    (out / "index.html").write_text(index_html(data, divs), encoding="utf-8")
    return [*written, *tables, out / "index.html"]


def _require_a_completed_trial(study: optuna.Study) -> None:
    states = Counter(t.state for t in study.get_trials(deepcopy=False))
    if not sum(states.values()):
        raise SearchError(f"study {study.study_name!r} has no trials yet")
    if not states[TrialState.COMPLETE]:
        raise SearchError(
            f"study {study.study_name!r} has no completed trial yet "
            f"({states[TrialState.FAIL]} failed, {states[TrialState.PRUNED]} pruned)"
        )


def _write_tables(study: optuna.Study, out: Path) -> list[Path]:
    """summary.csv, summary.md and, after the final step, final.csv."""
    rows = summary_table(study)
    _write_csv(out / "summary.csv", rows)
    md = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    md += ["| " + " | ".join("" if v is None else str(v) for v in r.values()) + " |" for r in rows]
    (out / "summary.md").write_text("\n".join(md) + "\n")
    tables = [out / "summary.csv", out / "summary.md"]
    final = records.study_record(study, records.FINAL)
    if final:
        _write_csv(out / "final.csv", final_rows(final))
        tables.append(out / "final.csv")
    return tables


def _write_csv(path: Path, rows: list[dict]) -> None:
    """Rows as CSV; a list (the final step's accuracy per seed) as one space-separated cell."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        for r in rows:
            writer.writerow(
                {k: " ".join(map(str, v)) if isinstance(v, list) else v for k, v in r.items()}
            )
