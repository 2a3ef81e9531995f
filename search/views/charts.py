"""The report's charts: Optuna's, and for an ofat study the reference's figures, as data.

``report_charts`` returns every chart in page order as (key, title, figure or why it is not
drawn). Each key names the chart's page, ``KEY.html``: names that stay the same from study to
study, so links and scripts can rely on them (``CHART_TITLES``; a factor of an ofat study is
``factor-NAME``). The charts read the study's first objective under its own name, and their
hover text is one short line a trial.
"""

from __future__ import annotations

import html
import importlib.util
import re
import warnings
from typing import Any

import optuna
import optuna.visualization as vis
import plotly.graph_objects as go
from optuna.study import StudyDirection

from search.study.space.space import Space
from search.study.storage.settings import stored_space
from search.study.storage.trials import shown
from search.views.figures import factor_effects, factor_figure, factor_panels, overview_figure
from search.views.summary import rows_for_trials

Chart = tuple[str, str, go.Figure | str]  # key, title, the figure or why it is not drawn
CHART_TITLES = {
    "factors": "factor effects (overview)",
    "history": "optimization history",
    "parallel": "parallel coordinates",
    "slice": "slice",
    "intermediate": "learning curves (intermediate values; pruned trials end early)",
    "timeline": "timeline",
    "importance-ped-anova": "parameter importance (PED-ANOVA, for {target})",
    "importance-fanova": "parameter importance (fANOVA, for {target})",
    "contour": "contour of the two most important parameters ({target})",
    "pareto": "Pareto front",
}
# Optuna's hover text of a trial: its number, values, params and every user attribute as JSON.
OPTUNA_HOVER = re.compile(r'^\{<br>\s*"number": (\d+),')


def target_name(study: optuna.Study) -> str:
    """The first objective, as the charts name it: "val_acc (higher is better)"."""
    names = study.metric_names or ["objective"]
    better = "higher" if study.directions[0] == StudyDirection.MAXIMIZE else "lower"
    return f"{names[0]} ({better} is better)"


def title_of(key: str, study: optuna.Study) -> str:
    return CHART_TITLES[key].format(target=target_name(study))


def _optuna_charts(study: optuna.Study) -> dict[str, go.Figure | str]:
    """Optuna's charts by key; a chart the study cannot draw yet is left out, with why."""
    multi = len(study.directions) > 1
    target = (lambda t: t.values[0]) if multi else None
    name = target_name(study)
    evaluators = {"ped-anova": optuna.importance.PedAnovaImportanceEvaluator()}
    if importlib.util.find_spec("sklearn"):
        evaluators["fanova"] = optuna.importance.FanovaImportanceEvaluator(seed=0)
    attempts = {
        "history": lambda: vis.plot_optimization_history(study, target=target, target_name=name),
        "parallel": lambda: vis.plot_parallel_coordinate(study, target=target, target_name=name),
        "slice": lambda: vis.plot_slice(study, target=target, target_name=name),
        "intermediate": lambda: vis.plot_intermediate_values(study),
        "timeline": lambda: vis.plot_timeline(study),
    }
    for ev_name, ev in evaluators.items():
        attempts[f"importance-{ev_name}"] = lambda ev=ev: vis.plot_param_importances(
            study, evaluator=ev, target=target, target_name=name
        )
    if multi:
        attempts["pareto"] = lambda: vis.plot_pareto_front(study)
    charts: dict[str, go.Figure | str] = {}
    for key, draw in attempts.items():
        try:
            fig = draw()
        except Exception as e:  # noqa: BLE001 - e.g. too few trials for importance
            charts[key] = f"not drawn: {e}"
            continue
        charts[key] = fig.update_layout(title=title_of(key, study))
    contour = _contour(study, evaluators["ped-anova"], target)
    if contour is not None:
        charts["contour"] = contour
    return charts


def _contour(study: optuna.Study, evaluator: Any, target: Any) -> go.Figure | str | None:
    """The contour of the two most important parameters; None with fewer than two."""
    if stored_space(study).grid == "ofat":
        return "not drawn: a one-factor-at-a-time study never varies two factors together"
    try:
        top = list(
            optuna.importance.get_param_importances(study, evaluator=evaluator, target=target)
        )[:2]
        if len(top) < 2:
            return None
        fig = vis.plot_contour(study, params=top, target=target, target_name=target_name(study))
    except Exception as e:  # noqa: BLE001
        return f"not drawn: {e}"
    return fig.update_layout(title=title_of("contour", study))


def _hover_line(row: dict[str, Any]) -> str:
    seconds = "" if row["seconds"] is None else f", {row['seconds']:.1f} s"
    metrics = ", ".join(f"{k} {shown(k, v)}" for k, v in list(row["metrics"].items())[:3])
    return (
        f"trial {row['trial']} ({row['state']})<br>{html.escape(row['params'])}<br>"
        f"{metrics or '-'}{seconds}"
    )


def _short_hover(fig: go.Figure, hover: dict[int, str]) -> None:
    """Optuna's timeline and Pareto front carry each trial's every user attribute (its whole
    learning history) in their hover text: 774 KB for 15 trials of a real run. One short line
    a trial keeps the page small and readable."""
    for trace in fig.data:
        texts = getattr(trace, "text", None)
        if not isinstance(texts, tuple | list) or not texts:
            continue
        found = [OPTUNA_HOVER.match(t) if isinstance(t, str) else None for t in texts]
        if all(found):
            trace.text = [hover.get(int(m.group(1)), f"trial {m.group(1)}") for m in found]


def report_charts(study: optuna.Study, space: Space) -> list[Chart]:
    """Every chart of the report in page order, as (key, title, figure or why not drawn)."""
    charts: list[Chart] = []
    if space.grid == "ofat":
        panels = factor_panels(study, space)
        overview = overview_figure(factor_effects(panels))
        charts.append(("factors", CHART_TITLES["factors"], overview))
        charts += [
            (f"factor-{_key_of(f)}", f"factor: {f}", factor_figure(f, e))
            for f, e in panels.items()
        ]
    with warnings.catch_warnings():  # experimental-API and small-study notices
        warnings.simplefilter("ignore")
        charts += [(k, title_of(k, study), fig) for k, fig in _optuna_charts(study).items()]
    rows = rows_for_trials(study.get_trials(deepcopy=False), space)
    hover = {r["trial"]: _hover_line(r) for r in rows}
    for _, _, fig in charts:
        if isinstance(fig, go.Figure):
            _short_hover(fig, hover)
    return charts


def _key_of(name: str) -> str:
    """A factor's name as part of a short file name."""
    return re.sub(r"[^a-z0-9_]+", "-", name.lower()).strip("-")[:20] or "x"
