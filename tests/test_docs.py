"""The documentation: the strict build passes and fails on a broken link, the command-line
reference holds every option of every command, and every runnable shell block runs."""

from __future__ import annotations

import argparse
import html
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from tests import launch
from tests.helpers import GRID_OPTIONS, GRID_STUDY, GRID_TASKS, submit_argv

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CONFIG = ROOT / "mkdocs.yml"
RUNNABLE = "# runnable"  # the first line of a shell block that the tests run
# The small caps every runnable block runs with, as a reader's quick look would set them.
CAPS = {"SEARCH_MAX_EPOCHS": "1", "SEARCH_TRAIN_LIMIT": "2000"}
QUIET = {"NO_MKDOCS_2_WARNING": "1"}  # mkdocs-material's notice about its successor


def need_mkdocs() -> None:
    if all(importlib.util.find_spec(m) for m in ("mkdocs", "material", "mkdocstrings")):
        return
    if os.environ.get("CI"):
        pytest.fail("CI is set but mkdocs is missing (the docs extra: pip install -e '.[docs]')")
    pytest.skip("mkdocs is not installed: pip install -e '.[docs]'")


def build_in_process(site: Path, docs_dir: Path = DOCS) -> None:
    """``mkdocs build --strict`` of this repository's config in this process, so that a test
    can change what the build reads (a parser, a copy of the pages); raises on a warning."""
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    config = load_config(str(CONFIG), docs_dir=str(docs_dir), site_dir=str(site), strict=True)
    build(config)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built as a user builds it: ``mkdocs build --strict``."""
    need_mkdocs()
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(CONFIG), "-d", str(out)],
        cwd=ROOT,
        env={**os.environ, **QUIET},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def cli_page(site: Path) -> str:
    return html.unescape((site / "cli" / "index.html").read_text())


@pytest.mark.slow
def test_the_strict_build_makes_every_page_and_the_search_index(site):
    for page in sorted(DOCS.glob("*.md")):
        name = "" if page.stem == "index" else page.stem
        assert (site / name / "index.html").is_file(), page.name
    assert (site / "search" / "search_index.json").is_file()


def test_the_cli_reference_lists_every_option_of_every_command(site):
    sys.path.insert(0, str(DOCS))
    import gen_cli

    page = cli_page(site)
    for name, parser in gen_cli.parsers().items():
        assert f"search.{name}" in page
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            for option in action.option_strings:
                assert option in page, f"search.{name} {option}"
            choices = list(action.choices or [])
            if len(choices) > 8:  # a range of numbers is shown by its ends
                assert f"{choices[0]} to {choices[-1]}" in page, f"search.{name} {option}"
                continue
            for choice in choices:
                assert f"<code>{choice}</code>" in page, f"search.{name} {choice}"


@pytest.mark.slow
def test_an_option_added_to_a_parser_appears_in_the_built_reference(tmp_path, monkeypatch):
    need_mkdocs()
    import search.best

    original = search.best.build_parser

    def with_one_more() -> argparse.ArgumentParser:
        parser = original()
        parser.add_argument("--added-by-a-test", choices=["alpha", "omega"], help="new here")
        return parser

    monkeypatch.setattr(search.best, "build_parser", with_one_more)
    monkeypatch.chdir(ROOT)
    build_in_process(tmp_path / "site")
    page = cli_page(tmp_path / "site")
    assert "--added-by-a-test" in page and "<code>omega</code>" in page and "new here" in page


@pytest.mark.slow
def test_a_broken_internal_link_fails_the_strict_build(tmp_path, monkeypatch, caplog):
    need_mkdocs()
    from mkdocs.exceptions import Abort

    docs = tmp_path / "docs"
    shutil.copytree(DOCS, docs, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.chdir(ROOT)
    build_in_process(tmp_path / "site", docs_dir=docs)  # the copy builds, as the pages do
    page = docs / "results.md"
    page.write_text(page.read_text() + "\nSee [a page that is gone](no-such-page.md).\n")
    with pytest.raises(Abort, match="1 warnings in strict mode"):
        build_in_process(tmp_path / "site", docs_dir=docs)
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "results.md" in warning and "no-such-page.md" in warning


def test_every_relative_link_and_picture_of_the_readme_exists():
    text = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    relative = [t for t in targets if "://" not in t]
    assert relative and [t for t in relative if not (ROOT / t).exists()] == []


def runnable_blocks() -> list:
    """(where, script) of every fenced bash block marked runnable, in the README and docs/."""
    found = []
    for path in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        text = path.read_text()
        for match in re.finditer(r"^```bash\n(.*?)^```", text, re.S | re.M):
            script = match.group(1)
            if script.startswith(RUNNABLE):
                line = text[: match.start()].count("\n") + 1
                where = f"{path.relative_to(ROOT)}:{line}"
                found.append(pytest.param(where, script, id=where))
    return found


def test_the_readme_and_the_docs_have_runnable_blocks():
    places = {block.values[0].split(":")[0] for block in runnable_blocks()}
    assert "README.md" in places and any(p.startswith("docs/") for p in places)


@pytest.mark.slow
@pytest.mark.parametrize(("where", "script"), runnable_blocks())
def test_every_runnable_block_runs_at_small_caps(where, script, real_root, tmp_path):
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "examples", tmp_path / "examples", ignore=ignore)
    env = {k: v for k, v in os.environ.items() if k != "SEARCH_STORAGE"}
    env |= CAPS | {
        "SEARCH_DATA_DIR": str(real_root),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
    }
    (tmp_path / "block.sh").write_text(script)
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "block.sh"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"{where}: exit {done.returncode}\n{done.stderr[-2000:]}"


def cluster_path_commands() -> list[list[str]]:
    """The commands of the numbered steps of "From one machine to a cluster"."""
    text = (DOCS / "workers.md").read_text()
    section = text.split("## From one machine to a cluster", 1)[1].split("\n| engine", 1)[0]
    return [shlex.split(c) for c in re.findall(r"`((?:python|kubectl) [^`]+)`", section)]


@pytest.mark.slow
def test_the_cluster_paths_first_steps_run_as_written(real_root, tmp_path):
    runs = [c for c in cluster_path_commands() if c[2] in ("search.run", "search.worker")]
    assert len(runs) == 3
    env = {k: v for k, v in os.environ.items() if k not in ("SEARCH_STORAGE", *CAPS)}
    for command in runs:  # in a fresh folder: the default storage, study_db/mnist.db
        done = launch.run(  # as written, in a process of its own (forked warm)
            [sys.executable, *command[1:]],
            cwd=tmp_path,
            env={**env, "SEARCH_DATA_DIR": str(real_root)},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr
    storage = f"sqlite:///{tmp_path}/study_db/mnist.db"
    for name in ("mnist-ofat-e1-n2000", GRID_STUDY):  # step 1's study, and steps 2's
        trials = optuna.load_study(study_name=name, storage=storage).trials
        assert [t.state.name for t in trials] == ["COMPLETE"] * 15


def test_the_cluster_paths_last_step_is_what_the_cluster_tests_run():
    commands = cluster_path_commands()
    (create,) = [c for c in commands if "--create-only" in c]
    assert create[3:] == [*GRID_OPTIONS, "--study-name", GRID_STUDY, "--create-only"]
    (submit,) = [c for c in commands if c[2:3] == ["search.submit"]]
    assert submit[3:] == submit_argv(GRID_STUDY, GRID_TASKS)  # tests/test_slurm.py's array
    (kubectl,) = [c for c in commands if c[0] == "kubectl"]
    assert kubectl == ["kubectl", "apply", "-k", "deploy/kubernetes/"]
    assert (ROOT / kubectl[-1] / "kustomization.yaml").exists()  # tests/test_kubernetes.py
