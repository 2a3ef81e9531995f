"""Reports and the dashboard's view, checked on their data, by the API and in a real browser."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import select
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna_dashboard import get_note
from optuna_dashboard._custom_plot_data import get_plotly_graph_objects

from search import report
from search.run import main
from search.study.settings import stored_space
from search.views.figures import factor_figure, factor_panels
from search.views.report import summary_table

from .test_run import args

NAME = "mnist-ofat-e2-v200"


@pytest.fixture(scope="module")
def ofat_db(tiny_root, tmp_path_factory) -> Path:
    """A finished ofat study (2 epochs on tiny data) with its artifacts beside it."""
    db = tmp_path_factory.mktemp("ofat") / "s.db"
    assert main(args(tiny_root, db, "--max-epochs", "2")) == 0
    return db


def load(db: Path) -> optuna.Study:
    return optuna.load_study(study_name=NAME, storage=f"sqlite:///{db}")


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
    assert tanh["loss"] == trial.user_attrs["train_curve"]
    assert tanh["samples"] == [r["samples_seen"] for r in trial.user_attrs["history"]]
    fig = factor_figure("activation", panels["activation"])
    loss_traces = [t for t in fig.data if t.xaxis == "x"]
    assert [t.name for t in loss_traces] == ["relu (baseline)", "sigmoid", "tanh"]
    assert list(loss_traces[2].y) == [p[1] for p in tanh["loss"]]


def test_report_writes_factor_pages_the_overview_and_the_summaries(ofat_db, tmp_path, capsys):
    out = tmp_path / "rep"
    code = report.main(
        ["--study-name", NAME, "--storage", f"sqlite:///{ofat_db}", "--out", str(out)]
    )
    assert code == 0
    names = {p.name for p in out.iterdir()}
    assert {
        "factor-effects--overview.html",
        "factor--activation.html",
        "index.html",
        "summary.csv",
        "summary.md",
        "optimization-history.html",
        "plotly.min.js",
    } <= names
    assert any(n.startswith("parameter-importance--ped-anova") for n in names)
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert len(rows) == 15 and {"val_acc", "test_acc", "seconds", "state"} <= set(rows[0])
    assert {r["epochs_run"] for r in rows} == {"2"} and {r["train_images"] for r in rows} == {
        "1000"
    }
    index = (out / "index.html").read_text()
    assert 'href="factor--lr.html"' in index
    # One factor at a time never varies two together: no contour of two of them.
    assert "never varies two factors together" in index
    assert not any(n.startswith("contour") for n in names)
    assert "15 trials: 15 complete" in index and "1,000 training images" in index
    assert "kaleido" in capsys.readouterr().out  # says once that PNGs were skipped


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
    system_attrs = study._storage.get_study_system_attrs(study._study_id)
    graphs = get_plotly_graph_objects(system_attrs)
    assert {"ofat-overview", "ofat-activation", "ofat-lr"} <= set(graphs)
    assert "activation: one curve per value" in graphs["ofat-activation"]
    for t in study.trials:
        metas = optuna.artifacts.get_all_artifact_meta(t, storage=study._storage)
        assert any(m.filename.endswith("learning-curve.csv") for m in metas)
    weights = [
        m
        for t in study.trials
        for m in optuna.artifacts.get_all_artifact_meta(t, storage=study._storage)
        if m.filename.endswith("weights.pt")
    ]
    assert weights  # at least the first trial was a new best
    assert (ofat_db.parent / "artifacts").is_dir()


def test_published_weights_load_without_running_pickled_code(ofat_db):
    import torch

    study = load(ofat_db)
    (best,) = [t for t in study.trials if t.number == study.best_trial.number]
    metas = optuna.artifacts.get_all_artifact_meta(best, storage=study._storage)
    (meta,) = [m for m in metas if m.filename.endswith("weights.pt")]
    state = torch.load(ofat_db.parent / "artifacts" / meta.artifact_id, weights_only=True)
    hidden = best.user_attrs["config"]["model"]["hidden"]
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
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
    assert all(t["artifacts"] for t in detail["trials"])


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_dashboard_pages_show_the_study_in_a_real_browser(dashboard, tmp_path):
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but chromium is missing (.ci/run installs it)")
        pytest.skip("no chromium here: apt-get install chromium chromium-driver")
    studies = json.loads(_get(f"{dashboard}/api/studies"))["study_summaries"]
    study_id = next(s["study_id"] for s in studies if s["study_name"] == NAME)
    page = f"{dashboard}/dashboard/studies/{study_id}"
    flags = [
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

    def text_of(url: str) -> str:
        dom = subprocess.run(
            [*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120
        ).stdout
        return re.sub(r"<[^>]+>", " ", dom)

    overview = text_of(page)
    assert NAME in overview
    assert "activation: one curve per value" in overview  # a custom ofat figure
    assert "Current best: trial" in text_of(f"{page}/note")
    trials = text_of(f"{page}/trials")
    assert {f"Trial {n}" for n in range(15)} <= set(re.findall(r"Trial \d+", trials))
    assert "learning-curve.csv" in trials and "weights.pt" in trials  # the artifacts
    shot = tmp_path / "dashboard.png"  # kept in the test's folder for a person to look at
    subprocess.run([*flags, f"--screenshot={shot}", page], capture_output=True, timeout=120)
    assert shot.stat().st_size > 10_000


@pytest.mark.slow
def test_a_report_and_the_dashboard_read_while_two_workers_write(tiny_root, tmp_path, pause):
    db = tmp_path / "live.db"
    mid_study = pause(after_epochs=1)  # a worker with its first trial done, in its second
    search = subprocess.Popen(
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
    states = [t.state.name for t in load_trials_of(db, "mnist-ofat-e1-v200")]
    assert states == ["COMPLETE"] * 15


def load_trials_of(db: Path, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{db}").get_trials()
