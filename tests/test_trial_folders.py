"""Trial folders: two studies never share one, and a checkpoint resumes only its own trial."""

from __future__ import annotations

import signal
from pathlib import Path

import optuna
import pytest
import torch

from search.run import main
from search.study.storage.folders import study_folder
from search.study.storage.storage import open_storage, records

ONE_POINT = """name = "one"
[params]
layers = 1
units = 32
epochs = 3
"""
# Names that made one folder before: a space, a slash, and non-ASCII text of one length.
CLASHING = [("ux a", "ux_a"), ("a/b", "a_b"), ("研究-ñ-🚀", "日本-é-🎉")]


@pytest.mark.parametrize(("first", "second"), CLASHING)
def test_studies_whose_names_once_shared_a_folder_get_folders_of_their_own(
    first, second, tmp_path
):
    storage = open_storage(f"sqlite:///{tmp_path}/s.db")
    folders = set()
    for name in (first, second):
        main_study = optuna.create_study(storage=storage, study_name=name)
        main_study.set_user_attr("uid", f"uid-of-{len(folders)}")  # as search.run draws one
        folders.add(study_folder(tmp_path, main_study))
    assert len(folders) == 2


def argv(root: Path, db: Path, space: Path, name: str) -> list[str]:
    return [
        *("--sampler", "grid", "--space", str(space), "--study-name", name),
        *("--data-dir", str(root), "--storage", f"sqlite:///{db}", "--val-size", "200"),
        *("--workers", "1", "--quiet"),
    ]


def interrupted_in_epoch_2(root: Path, db: Path, space: Path, name: str, pause) -> None:
    in_epoch_2 = pause(after_epochs=1)
    proc = in_epoch_2.start("search.run", *argv(root, db, space, name))
    in_epoch_2.wait(proc)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)


def last_trial(db: Path, name: str) -> optuna.trial.FrozenTrial:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{db}").trials[-1]


@pytest.mark.slow
def test_a_study_with_a_clashing_name_leaves_the_others_checkpoint_alone(
    tiny_root, tmp_path, pause
):
    space, db = tmp_path / "one.toml", tmp_path / "s.db"
    space.write_text(ONE_POINT)
    interrupted_in_epoch_2(tiny_root, db, space, "ux a", pause)
    assert main(argv(tiny_root, db, space, "ux_a")) == 0  # its own trial 0, start to end
    assert main(argv(tiny_root, db, space, "ux a")) == 0
    resumed = last_trial(db, "ux a")
    assert resumed.state.name == "COMPLETE"
    assert resumed.user_attrs["resumed_from"] == {"trial": 0, "epoch": 1}


@pytest.mark.slow
def test_a_checkpoint_of_another_study_is_refused_and_the_point_runs_from_the_start(
    tiny_root, tmp_path, pause
):
    space, db = tmp_path / "one.toml", tmp_path / "s.db"
    space.write_text(ONE_POINT)
    interrupted_in_epoch_2(tiny_root, db, space, "mine", pause)
    study = optuna.load_study(study_name="mine", storage=f"sqlite:///{db}")
    kept = records.rows(study, (records.CHECKPOINT,), study.trials[0])
    path = tmp_path / "artifacts" / next(iter(kept.values()))[records.CHECKPOINT][-1]["file"]
    payload = torch.load(path, weights_only=True)
    torch.save({**payload, "owner": {"study": "another", "trial": 0}}, path)
    assert main(argv(tiny_root, db, space, "mine")) == 0
    rerun = last_trial(db, "mine")
    assert rerun.state.name == "COMPLETE" and "resumed_from" not in rerun.user_attrs
    assert len(records.history(study, rerun)) == 3  # every epoch run again
