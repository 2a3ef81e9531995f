"""The final step: retrain a study's best configurations on every training example, with several
seeds, and read the test set once per model.

The configurations are the study's best completed trials by their first objective (the
validation metric); no test figure chooses anything. Each (configuration, seed) runs the task's
``train`` with ``ctx.final`` true: training and validation data together, the study's epochs,
the test metrics computed once at the end. The study records each metric's mean and standard
deviation per configuration (user attribute ``final``), and the weights the winner's first seed
kept (``ctx.save_weights``) as an artifact: a state dict that ``torch.load(path,
weights_only=True)`` reads without running pickled code.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact
from optuna.trial import FrozenTrial

from search.errors import SearchError
from search.study.running.final_run import FinalConfig, Job, train_job
from search.study.running.pool import adopt_environment, worker_context
from search.study.space.space import point_key
from search.study.storage import records
from search.study.storage.settings import StudySettings, stored_settings
from search.study.storage.trials import ranked

WEIGHTS_FORMAT = "torch state dict; torch.load(path, weights_only=True)"


def choose(study: optuna.Study, top: int) -> list[FrozenTrial]:
    """The best ``top`` completed trials by the first objective, one per configuration."""
    chosen: dict[str, FrozenTrial] = {}
    for t in ranked(study):
        chosen.setdefault(point_key(t.params), t)
    if not chosen:
        raise SearchError(
            f"--study-name {study.study_name}: no completed trial to finalize yet; "
            "run the study first (python -m search.run)"
        )
    return list(chosen.values())[:top]


def plan(study: optuna.Study, cfg: FinalConfig, folder: Path) -> list[Job]:
    """Every (configuration, seed) to train; the winner's first seed keeps its weights."""
    settings = stored_settings(study)
    threads = max(1, (os.cpu_count() or 1) // cfg.workers) if cfg.workers > 1 else None
    jobs = []
    for rank, t in enumerate(choose(study, cfg.top)):
        for i in range(cfg.seeds):
            seed = (settings.seed + i) % 2**32
            jobs.append(
                Job(
                    trial=t.number,
                    seed=seed,
                    params=dict(t.params),
                    settings=settings,
                    task_hash=records.study_record(study, records.TASK_HASH, ""),
                    cfg=cfg,
                    threads=threads,
                    folder=str(folder / f"trial-{t.number}-seed-{seed}"),
                    keep_weights=rank == 0 and i == 0,
                )
            )
    return jobs


def headline(settings: StudySettings, metrics: list[str]) -> str:
    """The final step's headline metric: the first objective's test counterpart (val_acc:
    test_acc), else the first metric the final runs returned."""
    chosen_by = settings.objective_metrics()[0][0]
    test = "test" + chosen_by[3:] if chosen_by.startswith("val") else chosen_by
    return test if test in metrics or not metrics else metrics[0]


def _summarise(study: optuna.Study, jobs: list[Job], results: list[dict]) -> list[dict]:
    rows = []
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    for number in dict.fromkeys(j.trial for j in jobs):  # in rank order
        runs = [r for r in results if r["trial"] == number]
        names = list(dict.fromkeys(k for r in runs for k in r["metrics"]))
        per_seed = {n: [r["metrics"].get(n) for r in runs] for n in names}
        rows.append(
            {
                "trial": number,
                "value": trials[number].values[0],
                "params": trials[number].params,
                "seeds": [r["seed"] for r in runs],
                "outcomes": [r["outcome"] for r in runs],
                "metrics": per_seed,
                "mean": {n: _mean(v) for n, v in per_seed.items()},
                "std": {n: _std(v) for n, v in per_seed.items()},
                "seconds": round(sum(r["seconds"] for r in runs), 1),
            }
        )
    return rows


def _mean(values: list[float | None]) -> float | None:
    found = [v for v in values if v is not None]
    return statistics.fmean(found) if found else None


def _std(values: list[float | None]) -> float | None:
    """The spread over seeds; None with fewer than two (one seed has none to speak of)."""
    found = [v for v in values if v is not None]
    return statistics.stdev(found) if len(found) > 1 else None


def _run_jobs(jobs: list[Job], workers: int, done: Callable[[dict], None]) -> None:
    if workers == 1:
        for job in jobs:
            done(train_job(job))
        return
    with ProcessPoolExecutor(
        workers,
        mp_context=worker_context(),
        initializer=adopt_environment,
        initargs=(dict(os.environ),),
    ) as pool:
        for result in pool.map(train_job, jobs):
            done(result)


def _keep_weights(
    study: optuna.Study, winner: Job, result: dict, artifact_dir: Path
) -> dict[str, Any] | None:
    """The winner's first seed's weights, as an artifact of the study."""
    if not result.get("weights"):
        return None
    artifact_dir.mkdir(parents=True, exist_ok=True)
    named = Path(result["weights"]).with_name(f"final-trial-{winner.trial}-seed-{winner.seed}.pt")
    Path(result["weights"]).rename(named)
    artifact_id = upload_artifact(
        artifact_store=FileSystemArtifactStore(str(artifact_dir)),
        file_path=str(named),
        study_or_trial=study,
        mimetype="application/octet-stream",
    )
    return {
        "trial": winner.trial,
        "seed": winner.seed,
        "artifact_id": artifact_id,
        "path": str(artifact_dir / artifact_id),
        "format": WEIGHTS_FORMAT,
        "params": winner.params,
    }


def finalize(
    study: optuna.Study,
    cfg: FinalConfig,
    artifact_dir: Path,
    command: str,
    say: Callable[[str], None] = print,
) -> dict:
    """Train the final models, record them with the study and return the record."""
    start = time.perf_counter()
    settings = stored_settings(study)
    with tempfile.TemporaryDirectory() as tmp:
        jobs = plan(study, cfg, Path(tmp))
        results: list[dict] = []
        say(
            f"final: {len(jobs)} model{'s' if len(jobs) > 1 else ''} "
            f"({len(jobs) // cfg.seeds} configurations x {cfg.seeds} seed"
            f"{'s' if cfg.seeds > 1 else ''})"
            + (f" in {cfg.workers} processes" if cfg.workers > 1 else "")
        )

        def done(r: dict) -> None:
            results.append(r)
            shown = ", ".join(f"{k} {v:.4g}" for k, v in r["metrics"].items()) or "-"
            say(
                f"final [{len(results)}/{len(jobs)}] trial {r['trial']} seed {r['seed']}: "
                f"{shown} ({r['outcome']}, {r['seconds']:.1f} s)"
            )

        _run_jobs(jobs, cfg.workers, done)
        weights = _keep_weights(study, jobs[0], results[0], artifact_dir)
    names = list(dict.fromkeys(k for r in results for k in r["metrics"]))
    notes = results[0].get("notes", {})
    record = {
        "metric": headline(settings, names),
        "chosen_by": settings.objective_metrics()[0][0],
        "configs": _summarise(study, jobs, results),
        "train_images": notes.get("train_images", "all"),
        "caps": {"train_limit": settings.train_limit, "max_epochs": settings.max_epochs},
        "weights": weights,
        "command": command,
        "seconds": round(time.perf_counter() - start, 1),
    }
    records.set_study_record(study, records.FINAL, record)
    return record
