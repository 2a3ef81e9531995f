"""Figures of a controlled-variable (ofat) study: plain data first, then Plotly figures.

For each factor, the reference drew the training loss and the accuracy against samples seen,
one curve per value; ``factor_panels`` computes exactly those series from the trials' stored
history (tests assert on them), and ``factor_figure`` / ``overview_figure`` draw them.
"""

from __future__ import annotations

from typing import Any

import optuna
import plotly.graph_objects as go
from optuna.trial import TrialState
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from search.study.space.space import Space, point_key
from search.study.storage import records
from search.study.storage.trials import final_metrics

PALETTE = qualitative.Plotly


def _series(t: optuna.trial.FrozenTrial, runs: records.Runs) -> dict[str, Any]:
    history = runs.history(t)
    ended = final_metrics(t)
    return {
        "trial": t.number,
        "loss": [list(p) for p in runs.curve(t)],
        "samples": [r.get("samples_seen", r["epoch"]) for r in history],
        "val_acc": [r.get("val_acc") for r in history],
        "test_acc": [r.get("test_acc") for r in history],
        "best_val": ended.get("val_acc"),
        "test_at_best": ended.get("test_acc"),
        "seconds": records.small(t, records.SECONDS),
        "state": t.state.name,
    }


def factor_panels(study: optuna.Study, space: Space) -> dict[str, list[dict[str, Any]]]:
    """Per factor: one entry per value (the baseline first), with the series to draw.

    Only finished trials count; of several runs of one point the latest finished one is used.
    """
    finished: dict[str, optuna.trial.FrozenTrial] = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        finished[records.point_of(t) or point_key(t.params)] = t
    runs = records.Runs(study)
    base = {k: space.baseline[k] for k in space.params}
    baseline = finished.get(point_key(base))
    panels: dict[str, list[dict[str, Any]]] = {}
    for factor, param in space.params.items():
        values = getattr(param, "values", ())
        if len(values) < 2:
            continue
        entries = []
        for value in [base[factor], *[v for v in values if v != base[factor]]]:
            key = point_key({**base, factor: value})
            t = baseline if value == base[factor] else finished.get(key)
            if t is not None:
                label = f"{value} (baseline)" if value == base[factor] else str(value)
                entries.append({"value": value, "label": label, **_series(t, runs)})
        panels[factor] = entries
    return panels


def factor_effects(panels: dict[str, list[dict[str, Any]]]) -> list[tuple[str, float]]:
    """Each factor's effect: the range of best validation accuracy across its values."""
    effects = []
    for factor, entries in panels.items():
        accs = [e["best_val"] for e in entries if e["best_val"] is not None]
        if len(accs) >= 2:
            effects.append((factor, max(accs) - min(accs)))
    return sorted(effects, key=lambda fe: fe[1], reverse=True)


def factor_figure(factor: str, entries: list[dict[str, Any]]) -> go.Figure:
    fig = make_subplots(
        rows=1, cols=3, subplot_titles=("training loss", "validation accuracy", "test accuracy")
    )
    for i, e in enumerate(entries):
        color = PALETTE[i % len(PALETTE)]
        style = {
            "legendgroup": e["label"],
            "mode": "lines+markers",
            "line": {"width": 3 if i == 0 else 1.5, "color": color},
            "marker": {"size": 4, "color": color},
        }
        loss = e["loss"]
        fig.add_trace(
            go.Scatter(x=[p[0] for p in loss], y=[p[1] for p in loss], name=e["label"], **style),
            row=1,
            col=1,
        )
        for col, key in ((2, "val_acc"), (3, "test_acc")):
            fig.add_trace(
                go.Scatter(x=e["samples"], y=e[key], name=e["label"], showlegend=False, **style),
                row=1,
                col=col,
            )
    fig.update_xaxes(title_text="training samples seen")
    fig.update_layout(
        title=f"{factor}: one curve per value, the baseline in bold",
        legend_title_text=factor,
        height=420,
    )
    return fig


def overview_figure(effects: list[tuple[str, float]]) -> go.Figure:
    fig = go.Figure(
        go.Bar(x=[e * 100 for _, e in effects], y=[f for f, _ in effects], orientation="h")
    )
    fig.update_layout(
        title="Effect of each factor: range of best validation accuracy across its values "
        "(one factor at a time, so this stands in for importance)",
        xaxis_title="accuracy range (percentage points)",
        yaxis={"autorange": "reversed"},
        height=120 + 40 * len(effects),
    )
    return fig
