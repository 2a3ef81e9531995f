"""Reports and the dashboard's view, checked on their data, by the API and in a real browser."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import select
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import optuna
import pytest
from optuna_dashboard import get_note
from optuna_dashboard._custom_plot_data import get_plotly_graph_objects

from search import report
from search.study.storage import records
from search.study.storage.internals import storage_of, study_id
from search.study.storage.settings import stored_space
from search.views.charts import CHART_TITLES, title_of
from search.views.figures import factor_figure, factor_panels
from search.views.pages import PLOTLY_JS
from search.views.report import summary_table

from . import launch
from .helpers import args, load_trials

NAME = "mnist-ofat-e2-v200"


def load(db: Path) -> optuna.Study:
    return optuna.load_study(study_name=NAME, storage=f"sqlite:///{db}")


@pytest.mark.slow
def test_factor_curves_are_the_stored_series_one_per_value_with_the_baseline(ofat_db):
    study = load(ofat_db)
    panels = factor_panels(study, stored_space(study))
    assert set(panels) == {
        "layers",
        "activation",
        "loss",
        "regularization",
        "batch_size",
        "epochs",
        "lr",
    }
    for entries in panels.values():
        assert entries[0]["label"].endswith("(baseline)")  # the baseline is in every panel
        assert len({e["trial"] for e in entries}) == len(entries)
    tanh = next(e for e in panels["activation"] if e["value"] == "tanh")
    trial = study.trials[tanh["trial"]]
    assert trial.params["activation"] == "tanh"
    runs = records.Runs(study)
    assert tanh["loss"] == runs.curve(trial)
    assert tanh["samples"] == [r["samples_seen"] for r in runs.history(trial)]
    fig = factor_figure("activation", panels["activation"])
    loss_traces = [t for t in fig.data if t.xaxis == "x"]
    assert [t.name for t in loss_traces] == ["relu (baseline)", "sigmoid", "tanh"]
    assert list(loss_traces[2].y) == [p[1] for p in tanh["loss"]]


@pytest.fixture(scope="module")
def ofat_report(ofat_db, tmp_path_factory) -> tuple[Path, str]:
    """The report of the finished ofat study, written once by the command; with its stdout."""
    out = tmp_path_factory.mktemp("report") / "rep"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = report.main(
            ["--study-name", NAME, "--storage", f"sqlite:///{ofat_db}", "--out", str(out)]
        )
    assert code == 0
    return out, printed.getvalue()


class Page(HTMLParser):
    """What a written page holds: its title, links, tables (rows of cell texts, by the table's
    id) and the ids of its Plotly chart divs."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.title, self.links, self.plots = "", [], []
        self.tables: dict[str, list[list[str]]] = {}
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None
        self._in_title = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self._table = self.tables.setdefault(a.get("id") or "", [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []
        elif tag == "a":
            self.links.append(a.get("href"))
        elif tag == "title":
            self._in_title = True
        elif tag == "div" and "plotly-graph-div" in (a.get("class") or ""):
            self.plots.append(a.get("id"))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self._table[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._in_title:
            self.title += data


def page(path: Path) -> Page:
    return Page(path.read_text())


def test_report_writes_factor_pages_the_overview_and_the_summaries(ofat_report):
    out, printed = ofat_report
    names = {p.name for p in out.iterdir()}
    assert {
        "factors.html",
        "factor-activation.html",
        "factor-lr.html",
        "index.html",
        "summary.csv",
        "summary.md",
        "history.html",
        "importance-ped-anova.html",
        "timeline.html",
        "plotly.min.js",
    } <= names
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert len(rows) == 15 and {"val_acc", "test_acc", "seconds", "state"} <= set(rows[0])
    assert {r["epochs_run"] for r in rows} == {"2"} and {r["train_images"] for r in rows} == {
        "1000"
    }
    index = (out / "index.html").read_text()
    assert "factor-lr.html" in page(out / "index.html").links
    # One factor at a time never varies two together: no contour of two of them.
    assert "never varies two factors together" in index
    assert not any(n.startswith("contour") for n in names)
    assert "15 trials: 15 complete" in index and "1,000 training images" in index
    assert "kaleido" in printed  # says once that PNGs were skipped
    assert printed.splitlines()[-1] == str(out / "index.html")  # for scripts: the path alone


def test_the_index_shows_every_trial_and_the_best_one_in_its_cells(ofat_db, ofat_report):
    study = load(ofat_db)
    index = page(ofat_report[0] / "index.html")
    head, *body = index.tables["trials"]
    assert [int(r[0]) for r in body] == [t.number for t in study.trials]  # one row a trial
    val = next(i for i, h in enumerate(head) if h.startswith("val acc"))
    best = dict(index.tables["best"])  # label -> value
    shown = f"{study.best_value:.2%}"
    assert best["trial"] == str(study.best_trial.number)
    assert best["val acc"] == shown
    assert body[study.best_trial.number][val] == shown
    assert best["test acc"] == body[study.best_trial.number][head.index("test acc")]


def test_the_index_draws_every_chart_and_each_has_its_own_page(ofat_report):
    out = ofat_report[0]
    index = page(out / "index.html")
    charts = {p.stem for p in out.glob("*.html")} - {"index"}
    assert {f"plot-{key}" for key in charts} == set(index.plots)
    assert {f"{key}.html" for key in charts} <= set(index.links)
    assert (out / "index.html").read_text().count(f"src='{PLOTLY_JS}'") == 1


def test_every_chart_page_has_a_short_name_its_title_and_a_link_back(ofat_db, ofat_report):
    out, study = ofat_report[0], load(ofat_db)
    assert max(len(p.name) for p in out.iterdir()) <= 30
    pages = {p.stem: page(p) for p in out.glob("*.html") if p.name != "index.html"}
    for key, chart in pages.items():
        factor = key.removeprefix("factor-")
        assert chart.title == (
            title_of(key, study) if key in CHART_TITLES else f"factor: {factor}"
        )
        assert "index.html" in chart.links
        assert chart.plots == [f"plot-{key}"]


def test_the_timeline_of_fifteen_trials_is_small(ofat_report):
    # Optuna's hover text held every user attribute of each trial (its whole history): 70 KB
    # for 15 trials of 2 epochs here, 774 KB for a real run. Now it is Plotly's template of
    # about 7 KB and a line a trial, whatever the history holds.
    assert (ofat_report[0] / "timeline.html").stat().st_size < 20_000


@pytest.mark.parametrize("case", ["under a file", "a file", "proc", "read-only folder"])
def test_an_out_folder_that_cannot_be_written_is_one_line_and_exit_1(case, ofat_db, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    out = {
        "under a file": blocker / "rep",
        "a file": blocker,
        "proc": Path("/proc") / f"search-report-{os.getpid()}",
        "read-only folder": tmp_path / "ro" / "rep",
    }[case]
    if case == "read-only folder":
        if os.geteuid() == 0:
            pytest.skip("root writes in a read-only folder; the other cases cover it")
        (tmp_path / "ro").mkdir(mode=0o555)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    cmd = ["-m", "search.report", "--study-name", NAME, "--storage", f"sqlite:///{ofat_db}"]
    done = launch.run(
        [sys.executable, *cmd, "--out", str(out)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: --out")
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert blocker.read_text() == "a file, not a folder" and not Path(out).is_dir()


def test_repeated_runs_of_a_grid_point_are_marked(tmp_path):
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path}/s.db", study_name="d", direction="maximize"
    )
    for state in ("FAIL", "COMPLETE"):
        trial = study.ask()
        trial.suggest_categorical("lr", [1.0])
        trial.set_user_attr("point", '{"lr": 1.0}')
        study.tell(
            trial,
            0.5 if state == "COMPLETE" else None,
            state=getattr(optuna.trial.TrialState, state),
        )
    rows = summary_table(study)
    assert [r["same_point_as"] for r in rows] == ["1", "0"]


@pytest.mark.parametrize("name", ["../escape", "../../x", "/abs/path", "..", "a/../../b"])
def test_a_study_name_never_takes_a_report_outside_reports(name, tmp_path, monkeypatch):
    work = tmp_path / "deep" / "work"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    url = f"sqlite:///{tmp_path}/s.db"
    study = optuna.create_study(storage=url, study_name=name, direction="maximize")
    trial = study.ask()
    trial.suggest_float("lr", 0.1, 1.0)
    study.tell(trial, 0.5)
    assert report.main(["--study-name", name, "--storage", url]) == 0
    (folder,) = (work / "reports").iterdir()
    assert (folder / "index.html").exists()
    assert [p.name for p in work.iterdir()] == ["reports"]
    assert [p.name for p in (tmp_path / "deep").iterdir()] == ["work"]
    assert not (Path("/abs/path")).exists()


@pytest.mark.parametrize("case", ["missing", "empty", "all failed"])
def test_report_of_nothing_to_show_is_one_line_and_exit_1(case, tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/s.db"
    study = optuna.create_study(storage=url, study_name="there")
    if case == "all failed":
        study.tell(study.ask(), state=optuna.trial.TrialState.FAIL)
    name = "nope" if case == "missing" else "there"
    assert report.main(["--study-name", name, "--storage", url, "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error:")
    assert not (tmp_path / "r").exists()


def test_the_run_keeps_the_dashboards_view_complete(ofat_db):
    study = load(ofat_db)
    note = get_note(study)
    assert "Reproduce: `python -m search.run" in note and "Current best: trial" in note
    system_attrs = storage_of(study).get_study_system_attrs(study_id(study))
    graphs = get_plotly_graph_objects(system_attrs)
    assert {"ofat-overview", "ofat-activation", "ofat-lr"} <= set(graphs)
    assert "activation: one curve per value" in graphs["ofat-activation"]
    metas = optuna.artifacts.get_all_artifact_meta(study, storage=storage_of(study))
    # Each new best's weights, kept with the study (never a column of the trials' table).
    assert "trial-0-weights.pt" in {m.filename for m in metas}
    assert (ofat_db.parent / "artifacts").is_dir()


def test_published_weights_load_without_running_pickled_code(ofat_db):
    import torch

    study = load(ofat_db)
    best = study.best_trial
    metas = optuna.artifacts.get_all_artifact_meta(study, storage=storage_of(study))
    (meta,) = [m for m in metas if m.filename == f"trial-{best.number}-weights.pt"]
    state = torch.load(ofat_db.parent / "artifacts" / meta.artifact_id, weights_only=True)
    hidden = records.config(study, best)["model"]["hidden"]
    assert [tuple(v.shape) for v in state.values()] == [
        (hidden[0], 784),
        (hidden[0],),
        *[s for a, b in zip(hidden, hidden[1:], strict=False) for s in ((b, a), (b,))],
        (10, hidden[-1]),
        (10,),
    ]


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.read()


@contextlib.contextmanager
def serving(db: Path) -> Iterator[str]:
    """The dashboard on a port the system picks; yields its URL once it is listening."""
    cmd = [sys.executable, "-m", "search.dashboard", "--storage", f"sqlite:///{db}", "--port", "0"]
    proc = launch.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # The address is printed once the socket is bound: an event, no polling.
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        first = proc.stdout.readline() if ready else "(nothing printed in 120 s)"
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", first)
        assert found and found.group(1) != "0", first
        yield found.group(0).rstrip("/")
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


@pytest.fixture
def dashboard(ofat_db):
    with serving(ofat_db) as url:
        yield url


def test_dashboard_api_shows_the_study_its_note_figures_and_artifacts(dashboard):
    studies = json.loads(_get(f"{dashboard}/api/studies"))["study_summaries"]
    (summary,) = [s for s in studies if s["study_name"] == NAME]
    detail = json.loads(_get(f"{dashboard}/api/studies/{summary['study_id']}"))
    assert len(detail["trials"]) == 15
    assert "Current best" in detail["note"]["body"]
    assert len(detail["plotly_graph_objects"]) >= 8
    assert any(a["filename"].endswith("-weights.pt") for a in detail["artifacts"])


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def browser(tmp_path: Path) -> list[str]:
    """Headless chromium's command line (the test skips without it, and fails in CI)."""
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but chromium is missing (.ci/run installs it)")
        pytest.skip("no chromium here: apt-get install chromium chromium-driver")
    return [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=20000",
        "--window-size=1400,1800",
    ]


def dom_of(flags: list[str], url: str) -> str:
    """The page's DOM after its scripts ran."""
    done = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    return done.stdout


@pytest.mark.slow
def test_dashboard_pages_show_the_study_in_a_real_browser(dashboard, tmp_path):
    flags = browser(tmp_path)
    studies = json.loads(_get(f"{dashboard}/api/studies"))["study_summaries"]
    study_id = next(s["study_id"] for s in studies if s["study_name"] == NAME)
    page = f"{dashboard}/dashboard/studies/{study_id}"

    def text_of(url: str) -> str:
        return re.sub(r"<[^>]+>", " ", dom_of(flags, url))

    overview = text_of(page)
    assert NAME in overview and "-weights.pt" in overview  # the best weights, an artifact
    assert "activation: one curve per value" in overview  # a custom ofat figure
    assert "Current best: trial" in text_of(f"{page}/note")
    trials = text_of(f"{page}/trials")
    assert {f"Trial {n}" for n in range(15)} <= set(re.findall(r"Trial \d+", trials))
    shot = tmp_path / "dashboard.png"  # kept in the test's folder for a person to look at
    subprocess.run([*flags, f"--screenshot={shot}", page], capture_output=True, timeout=120)
    assert shot.stat().st_size > 10_000


@pytest.mark.slow
def test_the_report_draws_its_charts_in_a_real_browser(ofat_report, tmp_path):
    flags = browser(tmp_path)
    out = ofat_report[0]
    keys = [f"plot-{p.stem}" for p in out.glob("*.html") if p.name != "index.html"]
    index = dom_of(flags, (out / "index.html").as_uri())
    # Each chart's div, up to the next one: Plotly drew its SVG there from the one plotly.js.
    starts = sorted((index.index(f'id="{key}"'), key) for key in keys)
    ends = [s for s, _ in starts[1:]] + [len(index)]
    drawn = {key: "main-svg" in index[s:e] for (s, key), e in zip(starts, ends, strict=True)}
    assert drawn == dict.fromkeys(keys, True)
    timeline = dom_of(flags, (out / "timeline.html").as_uri())
    assert 'class="main-svg"' in timeline and 'href="index.html"' in timeline


@pytest.mark.slow
def test_a_report_and_the_dashboard_read_while_two_workers_write(tiny_root, tmp_path, pause):
    db = tmp_path / "live.db"
    mid_study = pause(after_epochs=1)  # a worker with its first trial done, in its second
    search = launch.Popen(
        [
            sys.executable,
            "-m",
            "search.run",
            *args(tiny_root, db, "--max-epochs", "1", "--workers", "2"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=mid_study.env,
    )
    mid_study.wait(search)  # the study now has a completed trial and a running one
    with serving(db) as url:
        for s in json.loads(_get(f"{url}/api/studies"))["study_summaries"]:
            detail = json.loads(_get(f"{url}/api/studies/{s['study_id']}"))
            states = {t["state"].upper() for t in detail["trials"]}
            assert {"RUNNING", "COMPLETE"} <= states, states
        out = tmp_path / "rep"
        code = report.main(
            [
                "--study-name",
                "mnist-ofat-e1-v200",
                "--storage",
                f"sqlite:///{db}",
                "--out",
                str(out),
            ]
        )
        assert code == 0
        running = [r for r in csv.DictReader(open(out / "summary.csv")) if r["state"] == "RUNNING"]
        assert running  # the report was written mid-study
        mid_study.resume()
        _, err = search.communicate(timeout=600)
    assert search.returncode == 0, err
    assert "locked" not in err
    states = [t.state.name for t in load_trials(db, "mnist-ofat-e1-v200")]
    assert states == ["COMPLETE"] * 15
