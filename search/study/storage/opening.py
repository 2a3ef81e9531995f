"""Opening a study: create it with its settings and space, or resume it only with the same.

A study is never resumed with settings that would make its results incomparable, nor with a
space other than its own: a space file edited under the same name is refused, naming the keys
that differ (comments and layout aside). ``--allow-space-change`` accepts a change that Optuna
can hold in one study (a range moved, a parameter added or dropped) and records it with the
study; a changed choice list or fixed value, on which every later trial would fail, is refused
even then.
"""

from __future__ import annotations

import tomllib
import warnings
from dataclasses import dataclass, replace
from typing import Any

import optuna
from optuna.distributions import check_distribution_compatibility
from optuna.storages import BaseStorage

from search.errors import UsageError
from search.study.queue.locks import study_lock
from search.study.queue.recovery import fail_dead_trials
from search.study.running.budget import RunnerConfig
from search.study.space.space import Space
from search.study.storage.folders import new_uid
from search.study.storage.internals import rdb
from search.study.storage.settings import StudySettings, default_precision, stored_space, versions
from search.study.storage.storage import missing_study, open_storage, records

SHOWN_CHARS = 40  # of each old and new value in a message


@dataclass(frozen=True)
class StudyPlan:
    """What a command asks of a study: made with these, or resumed only with the same."""

    name: str | None  # None: the settings' default name
    settings: StudySettings
    space: Space
    budget: RunnerConfig
    command: str  # as run, passwords hidden
    task_hash: str = ""  # sha256 of the task's source; "" for the built-in MLP
    allow_space_change: bool = False
    allow_task_change: bool = False


def open_study(storage_url: str, plan: StudyPlan) -> optuna.Study:
    """Create the study, or load it and check that it was made with the same settings, space
    and task source. The budget is recorded on every run (a rerun may raise it), so that
    workers joining from elsewhere stop where this command would."""
    storage = open_storage(storage_url)
    settings, space = plan.settings, plan.space
    name = plan.name or settings.default_name()
    if settings.precision is None:  # not given: the study's own, or the sampler's default
        settings = replace(settings, precision=_stored_precision(storage, name, settings))
    sampler, pruner = settings.search(space)
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        directions=[direction for _, direction in settings.objective_metrics()],
        load_if_exists=True,
        sampler=sampler,
        pruner=pruner,
    )
    stored = records.study_record(study, records.SETTINGS)
    if stored is None:
        records.set_study_record(study, records.SETTINGS, settings.to_attr())
        records.set_study_record(study, records.SPACE_TOML, space.source)
        records.set_study_record(study, records.COMMAND, plan.command)
        records.set_study_record(study, records.VERSIONS, versions())
        records.set_study_record(study, records.TASK_HASH, plan.task_hash)
        with warnings.catch_warnings():  # set_metric_names is flagged experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([metric for metric, _ in settings.objective_metrics()])
    else:
        _check_settings(name, StudySettings.from_attr(stored).to_attr(), settings.to_attr())
        _check_space(study, space, plan.allow_space_change)
        check_task_source(study, plan.task_hash, plan.allow_task_change, "--allow-task-change")
    if records.study_record(study, records.UID) is None:  # made before uids: one now
        with study_lock(rdb(study), study.study_name):
            again = optuna.load_study(study_name=name, storage=storage)
            if records.study_record(again, records.UID) is None:
                records.set_study_record(study, records.UID, new_uid())
    budget = {"n_trials": plan.budget.n_trials, "timeout": plan.budget.timeout}
    records.set_study_record(study, records.BUDGET, budget)
    fail_dead_trials(study)
    return study


def _stored_precision(storage: BaseStorage, name: str, settings: StudySettings) -> str:
    """The precision a study of that name was made with (fp32 from before the setting);
    the sampler's default for a new study."""
    if missing_study(storage, name) is None:
        stored = records.study_record(
            optuna.load_study(study_name=name, storage=storage), records.SETTINGS
        )
        if stored is not None:
            return stored.get("precision", "fp32")
    return default_precision(settings.sampler)


def check_task_source(study: optuna.Study, given: str, allow: bool, flag: str) -> None:
    """Refuse a task whose source differs from the one the study was made with, unless
    ``allow``: then the change is recorded with the study (from which trial on)."""
    stored = records.study_record(study, records.TASK_HASH, "")
    if stored == given:
        return
    if not allow:
        raise UsageError(
            f"study {study.study_name!r} was made with another version of its task (source "
            f"hash {stored[:12] or 'none'}, now {given[:12] or 'none'}); run the task it was "
            f"made with, choose another --study-name, or accept the change with {flag}"
        )
    changes = list(records.study_record(study, records.TASK_CHANGES, []))
    first = len(study.get_trials(deepcopy=False))
    changes.append({"from_trial": first, "old": stored, "new": given})
    records.set_study_record(study, records.TASK_CHANGES, changes)
    records.set_study_record(study, records.TASK_HASH, given)


def _check_settings(name: str, stored: dict[str, Any], given: dict[str, Any]) -> None:
    if stored == given:
        return
    diff = ", ".join(
        f"{k}={stored.get(k)!r} (now {v!r})" for k, v in given.items() if stored.get(k) != v
    )
    raise UsageError(
        f"study {name!r} was run with other settings: {diff}; "
        "resume it with the same options or choose another --study-name"
    )


def changed_keys(old_text: str, new_text: str) -> list[str]:
    """The keys (``params.lr_factor``, ``name``...) whose values differ between two space
    files, each with its old and new value; none when only comments or layout differ."""
    old, new = _flat(tomllib.loads(old_text)), _flat(tomllib.loads(new_text))
    missing = object()
    out = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key, missing), new.get(key, missing)
        if before != after:
            out.append(f"{key} ({_shown(before, missing)} -> {_shown(after, missing)})")
    return out


def _flat(raw: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"params": {"lr": {"high": 2}}}`` as ``{"params.lr.high": 2}``."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _shown(value: Any, missing: object) -> str:
    text = "absent" if value is missing else repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def _check_space(study: optuna.Study, space: Space, allow: bool) -> None:
    stored_text = records.study_record(study, records.SPACE_TOML) or ""
    keys = changed_keys(stored_text, space.source) if stored_text != space.source else []
    if not keys:
        return
    if not allow:
        raise UsageError(
            f"study {study.study_name!r} was made with another space: {'; '.join(keys)}; "
            "resume it with the space it was made with, choose another --study-name, or "
            "accept the change with --allow-space-change"
        )
    old = stored_space(study).distributions()
    clashes = []
    for param, dist in space.distributions().items():
        if param in old:
            try:
                check_distribution_compatibility(old[param], dist)
            except ValueError as e:
                clashes.append(f"params.{param} ({e})")
    if clashes:
        raise UsageError(
            f"--allow-space-change: {'; '.join(clashes)}: Optuna cannot hold both in one "
            "study, so every new trial would fail; choose another --study-name"
        )
    changes = list(records.study_record(study, records.SPACE_CHANGES, []))
    first = len(study.get_trials(deepcopy=False))  # the first trial of the new space
    changes.append({"from_trial": first, "keys": keys, "old_space_toml": stored_text})
    records.set_study_record(study, records.SPACE_CHANGES, changes)
    records.set_study_record(study, records.SPACE_TOML, space.source)
