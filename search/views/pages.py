"""The report's HTML: pages that load plotly.js from beside them, tables of text cells, and
the index page drawn from ``index_data``'s plain data."""

from __future__ import annotations

import html
from typing import Any

import plotly.graph_objects as go

PLOTLY_JS = "plotly.min.js"  # written once; every page loads it from beside itself
STYLE = (
    "body{font-family:sans-serif;margin:1em 2em}table{border-collapse:collapse;margin:.5em 0}"
    "th,td{padding:2px 10px;border-bottom:1px solid #ddd;text-align:left}th{background:#f4f4f4}"
    "section{overflow-x:auto}"  # a wide chart (the slice: 300 px a parameter) scrolls alone
)


def page(title: str, body: str) -> str:
    """An HTML page that loads plotly.js from beside it."""
    return (
        f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style><script src='{PLOTLY_JS}' charset='utf-8'></script></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )


def _table(element_id: str, header: list[str] | None, body: list[list[str]]) -> str:
    """A table of text cells; without a heading row, each row's first cell heads the row."""

    def cells(row: list[str]) -> str:
        lead = "" if header else f"<th>{html.escape(row[0])}</th>"
        rest = row if header else row[1:]
        return lead + "".join(f"<td>{html.escape(c)}</td>" for c in rest)

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header or [])
    lines = [f"<tr>{head}</tr>"] if header else []
    lines += [f"<tr>{cells(row)}</tr>" for row in body]
    return f"<table id='{element_id}'>\n" + "\n".join(lines) + "\n</table>"


def index_html(data: dict[str, Any], divs: dict[str, str]) -> str:
    name = html.escape(data["name"])
    run = f"<br>{html.escape(data['run'])}" if data["run"] else ""
    links = ", ".join(f"<a href='{t}'>{t}</a>" for t in data["tables"])
    parts = [
        f"<h1>Study {name}</h1>",
        f"<p>{html.escape(data['counts'])}{run}</p><p>Tables: {links}</p>",
        f"<h2>{data['best_heading']}</h2>",
        _table("best", None, [list(pair) for pair in data["best"]]),
    ]
    if data["final"]:
        parts += [
            "<h2>Final models</h2>",
            _table("final", *data["final"]),
            f"<details><summary>as text, with where the weights are</summary>"
            f"<pre>{html.escape(data['final_text'])}</pre></details>",
        ]
    parts += ["<h2>Trials</h2>", _table("trials", *data["trials"]), "<h2>Charts</h2><ul>"]
    parts += [
        f"<li><a href='{key}.html'>{html.escape(title)}</a></li>" for key, title in data["charts"]
    ]
    parts += [f"<li>{html.escape(t)}: {html.escape(why)}</li>" for t, why in data["not_drawn"]]
    parts.append("</ul>")
    for key, title in data["charts"]:
        heading = f"<h3><a href='{key}.html'>{html.escape(title)}</a></h3>"
        parts.append(f"<section id='{key}'>{heading}{divs[key]}</section>")
    return page(f"Study {data['name']}", "\n".join(parts))


def chart_div(key: str, fig: go.Figure) -> str:
    """A chart as a div that draws itself with the page's plotly.js."""
    height = f"{fig.layout.height}px" if fig.layout.height else "520px"
    return fig.to_html(
        full_html=False, include_plotlyjs=False, div_id=f"plot-{key}", default_height=height
    )
