"""Trial folders: where each trial's files live in a study's artifact folder.

Every trial gets a folder of its own, ``trials/STUDY-UID/trial-N``: the study's part is its
name made safe for a path plus its uid, a random id drawn when the study was made, so that two
studies never share a folder, whatever their names and databases.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from pathlib import Path

import optuna

from search.study.storage import records

NAME_CHARS = 40  # of the study's name in its folder's name


def new_uid() -> str:
    return uuid.uuid4().hex[:12]


def study_uid(study: optuna.Study) -> str:
    """The study's uid; a study made before uids has its name's hash instead."""
    uid = records.study_record(study, records.UID)
    return uid or hashlib.sha1(study.study_name.encode()).hexdigest()[:12]


def study_folder(artifact_dir: Path, study: optuna.Study) -> Path:
    """The study's folder of trial folders."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", study.study_name).strip("._")[:NAME_CHARS]
    return artifact_dir / "trials" / f"{safe or 'study'}-{study_uid(study)}"


def trial_folder(artifact_dir: Path, study: optuna.Study, number: int) -> Path:
    return study_folder(artifact_dir, study) / f"trial-{number}"
