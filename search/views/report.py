"""Reports of a study: HTML pages of Plotly charts, and its trials as tables.

``write_report`` writes HTML pages of Plotly charts (with ``index.html`` linking them;
plotly.js is written once beside them, so the folder works offline), ``summary.csv`` and
``summary.md``. An ofat study gets the reference's figures, one page per factor, and an
overview of the factors' effects; every study gets Optuna's charts.
"""

from __future__ import annotations

import csv
import html
import importlib.util
import re
import warnings
from collections import Counter
from pathlib import Path

import optuna
import optuna.visualization as vis
from optuna.trial import TrialState

from search.errors import SearchError
from search.study.settings import StudySettings, stored_space
from search.study.space import point_key
from search.views.figures import factor_effects, factor_figure, factor_panels, overview_figure
from search.views.summary import (
    counts_line,
    final_rows,
    format_final,
    rows_for_trials,
    run_line,
)

PNG = "kaleido"  # the package Plotly needs to write PNG copies


def summary_table(study: optuna.Study) -> list[dict]:
    """One row per trial, all parameters flat; repeated runs of a grid point are marked."""
    trials = study.get_trials(deepcopy=False)
    keys = [t.user_attrs.get("point") or point_key(t.params) for t in trials]
    runs = Counter(keys)
    names = sorted({k for t in trials for k in t.params})
    rows = []
    for t, key, row in zip(
        trials, keys, rows_for_trials(trials, stored_space(study)), strict=True
    ):
        others = [
            str(o.number) for o, k in zip(trials, keys, strict=True) if k == key and o is not t
        ]
        rows.append(
            {
                "trial": t.number,
                "state": t.state.name,
                **{n: t.params.get(n, "") for n in names},
                "val_acc": row["val_acc"],  # at the judged epoch (last, or best for a grid)
                "test_acc": row["test_acc"],
                "judged_epoch": row["judge"],
                "epochs_run": row["epochs"],  # what ran: a cap or a pruner may stop it early
                "train_images": row["train_images"],
                "seconds": row["seconds"],
                "same_point_as": " ".join(others) if runs[key] > 1 else "",
            }
        )
    return rows


def _optuna_charts(study: optuna.Study) -> dict[str, object]:
    """Optuna's charts by title; a chart the study cannot draw yet is left out, with why."""
    multi = len(study.directions) > 1
    target = (lambda t: t.values[0]) if multi else None
    name = "validation accuracy (higher is better)"
    evaluators = {"PED-ANOVA": optuna.importance.PedAnovaImportanceEvaluator()}
    if importlib.util.find_spec("sklearn"):
        evaluators["fANOVA"] = optuna.importance.FanovaImportanceEvaluator(seed=0)
    charts: dict[str, object] = {}
    attempts = {
        "optimization history": lambda: vis.plot_optimization_history(
            study, target=target, target_name=name
        ),
        "parallel coordinates": lambda: vis.plot_parallel_coordinate(
            study, target=target, target_name=name
        ),
        "slice": lambda: vis.plot_slice(study, target=target, target_name=name),
        "learning curves (intermediate values; pruned trials end early)": lambda: (
            vis.plot_intermediate_values(study)
        ),
        "timeline": lambda: vis.plot_timeline(study),
    }
    for ev_name, ev in evaluators.items():
        attempts[f"parameter importance ({ev_name}, for {name})"] = lambda ev=ev: (
            vis.plot_param_importances(study, evaluator=ev, target=target, target_name=name)
        )
    if multi:
        attempts["Pareto front"] = lambda: vis.plot_pareto_front(study)
    for title, draw in attempts.items():
        try:
            fig = draw()
        except Exception as e:  # noqa: BLE001 - e.g. too few trials for importance
            charts[title] = f"not drawn: {e}"
            continue
        fig.update_layout(title=title)
        charts[title] = fig
    if stored_space(study).grid == "ofat":
        charts["contour"] = (
            "not drawn: a one-factor-at-a-time study never varies two factors together"
        )
        return charts
    try:
        top = list(
            optuna.importance.get_param_importances(
                study, evaluator=evaluators["PED-ANOVA"], target=target
            )
        )[:2]
        if len(top) == 2:
            fig = vis.plot_contour(study, params=top, target=target, target_name=name)
            charts[f"contour of {top[0]} and {top[1]}"] = fig.update_layout(
                title=f"contour of the two most important parameters ({name})"
            )
    except Exception as e:  # noqa: BLE001
        charts["contour"] = f"not drawn: {e}"
    return charts


def folder_name(study_name: str) -> str:
    """A study's name as one safe folder name: letters, digits, ``.``, ``_`` and ``-`` only,
    never ``..`` or a leading dot, so ``reports/<name>`` cannot point outside ``reports/``."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", study_name).lstrip(".")
    return safe.replace("..", "_") or "study"


def _slug(title: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")[:60]


def write_report(study: optuna.Study, out: Path) -> list[Path]:
    """Write every page and table of the report; return the files written."""
    states = Counter(t.state for t in study.get_trials(deepcopy=False))
    if not sum(states.values()):
        raise SearchError(f"study {study.study_name!r} has no trials yet")
    if not states[TrialState.COMPLETE]:
        raise SearchError(
            f"study {study.study_name!r} has no completed trial yet "
            f"({states[TrialState.FAIL]} failed, {states[TrialState.PRUNED]} pruned)"
        )
    space = stored_space(study)
    stored = study.user_attrs.get("settings")
    settings = StudySettings.from_attr(stored) if stored else None
    out.mkdir(parents=True, exist_ok=True)
    pages: list[tuple[str, object]] = []
    if space.grid == "ofat":
        panels = factor_panels(study, space)
        pages.append(("factor effects (overview)", overview_figure(factor_effects(panels))))
        pages += [(f"factor: {f}", factor_figure(f, e)) for f, e in panels.items()]
    with warnings.catch_warnings():  # experimental-API and small-study notices
        warnings.simplefilter("ignore")
        pages += list(_optuna_charts(study).items())
    written, links = [], []
    png = importlib.util.find_spec(PNG) is not None
    for title, fig in pages:
        if isinstance(fig, str):
            links.append(f"<li>{html.escape(title)}: {html.escape(fig)}</li>")
            continue
        path = out / f"{_slug(title)}.html"
        fig.write_html(path, include_plotlyjs="directory")
        if png:
            fig.write_image(path.with_suffix(".png"))
        written.append(path)
        links.append(f'<li><a href="{path.name}">{html.escape(title)}</a></li>')
    rows = summary_table(study)
    _write_csv(out / "summary.csv", rows)
    md = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    md += ["| " + " | ".join("" if v is None else str(v) for v in r.values()) + " |" for r in rows]
    (out / "summary.md").write_text("\n".join(md) + "\n")
    final = study.user_attrs.get("final")
    tables = [out / "summary.csv", out / "summary.md"]
    if final:
        _write_csv(out / "final.csv", final_rows(final))
        tables.append(out / "final.csv")
    (out / "index.html").write_text(
        f"<!doctype html><meta charset='utf-8'><title>{html.escape(study.study_name)}</title>"
        f"<h1>Study {html.escape(study.study_name)}</h1><p>{html.escape(counts_line(study))}"
        + (f"; {html.escape(run_line(settings, study))}" if settings else "")
        + "; "
        + ", ".join(f"<a href='{p.name}'>{p.name}</a>" for p in tables)
        + "</p>"
        + (f"<h2>Final models</h2><pre>{html.escape(format_final(final))}</pre>" if final else "")
        + f"<ul>{''.join(links)}</ul>\n"
    )
    return [*written, *tables, out / "index.html"]


def _write_csv(path: Path, rows: list[dict]) -> None:
    """Rows as CSV; a list (the final step's accuracy per seed) as one space-separated cell."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        for r in rows:
            writer.writerow(
                {k: " ".join(map(str, v)) if isinstance(v, list) else v for k, v in r.items()}
            )
