"""A database password given in a storage URL is never stored, shown or printed."""

from __future__ import annotations

import uuid

import optuna
import sqlalchemy
from optuna_dashboard import get_note

from search import best, final, report
from search.run import main as run_main


def test_a_password_in_the_storage_url_never_reaches_the_database_or_the_output(
    pg_url,
    tiny_root,
    tmp_path,
    capsys,
    monkeypatch,
):
    secret = f"pw-{uuid.uuid4().hex[:10]}"  # the server trusts local connections: any works
    url = sqlalchemy.engine.make_url(pg_url).set(password=secret)
    storage = url.render_as_string(hide_password=False)
    monkeypatch.chdir(tmp_path)
    data = ["--data-dir", str(tiny_root), "--storage", storage]
    search = ["--sampler", "random", "--n-trials", "2", "--max-epochs", "1", "--val-size", "200"]
    assert run_main([*data, *search, "--workers", "1", "--verbose"]) == 0
    name = ["--study-name", "mnist-default-random-e1-v200", "--storage", storage]
    assert final.main([*name, "--data-dir", str(tiny_root), "--top", "1", "--seeds", "1"]) == 0
    assert report.main(name) == 0 and best.main(name) == 0
    assert run_main([*data, *search, "--study-name", "n", "--warm-start", "nope"]) == 2
    out, err = capsys.readouterr()
    assert "mnist-default-random-e1-v200" in out and secret not in out + err

    study = optuna.load_study(study_name=name[1], storage=storage)
    assert "***" in study.user_attrs["command"] and secret not in get_note(study)
    engine = sqlalchemy.create_engine(storage)
    tables = sqlalchemy.MetaData()
    tables.reflect(engine)
    with engine.connect() as con:
        stored = [str(r) for table in tables.sorted_tables for r in con.execute(table.select())]
    engine.dispose()
    assert len(stored) > 50 and not [row for row in stored if secret in row]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files and not [p for p in files if secret in p.read_text(errors="ignore")]


def test_every_command_takes_its_storage_from_the_environment(tiny_root, tmp_path, monkeypatch):
    from search import worker

    monkeypatch.setenv("SEARCH_STORAGE", f"sqlite:///{tmp_path}/env.db")
    search = ["--sampler", "random", "--n-trials", "1", "--max-epochs", "1", "--val-size", "200"]
    assert run_main(["--data-dir", str(tiny_root), *search, "--create-only"]) == 0
    name = ["--study-name", "mnist-default-random-e1-v200"]
    assert worker.main([*name, "--data-dir", str(tiny_root), "--quiet"]) == 0
    assert best.main(name) == 0
    (trial,) = optuna.load_study(study_name=name[1], storage=f"sqlite:///{tmp_path}/env.db").trials
    assert trial.state.name == "COMPLETE"
