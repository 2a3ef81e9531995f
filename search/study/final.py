"""The final step: retrain a study's best configurations on every training image, with several
seeds, and read the test set once per model.

The configurations are the study's best completed trials by their objective, the validation
accuracy; no test figure chooses anything. Each (configuration, seed) trains without a
validation set for the study's epochs and is tested once, after its last epoch. The study
records mean and standard deviation of the test accuracy per configuration (user attribute
``final``), and the weights of the first configuration's first seed as an artifact: a state
dict that ``torch.load(path, weights_only=True)`` reads without running pickled code.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import optuna
import torch
from optuna.artifacts import FileSystemArtifactStore, upload_artifact
from optuna.trial import FrozenTrial, TrialState

from search.engine.config import ModelConfig, TrainConfig
from search.engine.data import DataConfig, load
from search.engine.train import fit
from search.errors import UsageError
from search.study.settings import StudySettings, stored_settings
from search.study.space import point_key
from search.study.vocabulary import to_configs

WEIGHTS_FORMAT = "torch state dict; torch.load(path, weights_only=True)"


@dataclass(frozen=True)
class FinalConfig:
    top: int = 3  # configurations, the best by validation accuracy
    seeds: int = 3  # training seeds per configuration: the study's seed and the next ones
    workers: int = 1  # processes, each with cores / workers threads
    device: str = "cpu"
    data_dir: str = "data"


@dataclass(frozen=True)
class Job:
    """One model of the final step: a configuration trained with one seed."""

    trial: int
    seed: int
    model: ModelConfig
    train: TrainConfig
    data: DataConfig
    device: str
    threads: int | None  # torch threads in a worker process; None keeps the default
    weights: str = ""  # where to save the trained weights; "" saves none


def choose(study: optuna.Study, top: int) -> list[FrozenTrial]:
    """The best ``top`` completed trials by validation accuracy, one per configuration."""
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    chosen: dict[str, FrozenTrial] = {}
    for t in sorted(done, key=lambda t: (-t.values[0], t.number)):
        chosen.setdefault(point_key(t.params), t)
    if not chosen:
        raise UsageError(
            f"--study-name {study.study_name}: no completed trial to finalize yet; "
            "run the study first (python -m search.run)"
        )
    return list(chosen.values())[:top]


def plan(study: optuna.Study, cfg: FinalConfig, weights_dir: Path) -> list[Job]:
    """Every (configuration, seed) to train, the winner's first seed saving its weights."""
    settings: StudySettings = stored_settings(study)
    data = DataConfig(
        dataset=settings.dataset,
        data_dir=cfg.data_dir,
        val_size=0,  # every training image: the configuration is chosen already
        train_limit=settings.train_limit,
        seed=settings.seed,
    )
    threads = max(1, (os.cpu_count() or 1) // cfg.workers) if cfg.workers > 1 else None
    jobs = []
    for rank, t in enumerate(choose(study, cfg.top)):
        for i in range(cfg.seeds):
            seed = settings.seed + i
            model, train = to_configs(t.params, seed, settings.max_epochs)
            weights = str(weights_dir / f"final-trial-{t.number}-seed-{seed}.pt")
            jobs.append(
                Job(
                    trial=t.number,
                    seed=seed,
                    model=model,
                    train=replace(train, every_epoch=False),
                    data=data,
                    device=cfg.device,
                    threads=threads,
                    weights=weights if rank == 0 and i == 0 else "",
                )
            )
    return jobs


def train_job(job: Job) -> dict:
    """Train one model and read the test set once; runs in a worker process or in this one."""
    if job.threads:
        torch.set_num_threads(job.threads)
    result = fit(job.model, job.train, load(job.data, job.device))
    last = result.history[-1] if result.history else None
    tested = result.outcome == "completed" and last is not None and not math.isnan(last.test_acc)
    if tested and job.weights:
        result.save_weights(Path(job.weights))
    return {
        "trial": job.trial,
        "seed": job.seed,
        "test_acc": last.test_acc if tested else None,
        "outcome": result.outcome,
        "seconds": round(result.seconds, 2),
    }


def _summarise(study: optuna.Study, jobs: list[Job], results: list[dict]) -> list[dict]:
    rows = []
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    for number in dict.fromkeys(j.trial for j in jobs):  # in rank order
        trial = trials[number]
        runs = [r for r in results if r["trial"] == number]
        accs = [r["test_acc"] for r in runs if r["test_acc"] is not None]
        rows.append(
            {
                "trial": number,
                "val_accuracy": trial.values[0],
                "params": trial.params,
                "seeds": [r["seed"] for r in runs],
                "test_acc": [r["test_acc"] for r in runs],
                "mean": statistics.fmean(accs) if accs else None,
                "std": statistics.stdev(accs) if len(accs) > 1 else 0.0 if accs else None,
                "seconds": round(sum(r["seconds"] for r in runs), 1),
            }
        )
    return rows


def finalize(
    study: optuna.Study,
    cfg: FinalConfig,
    artifact_dir: Path,
    command: str,
    say: Callable[[str], None] = print,
) -> dict:
    """Train the final models, record them with the study and return the record."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        jobs = plan(study, cfg, Path(tmp))
        results = []
        say(
            f"final: {len(jobs)} models ({len(jobs) // cfg.seeds} configurations x "
            f"{cfg.seeds} seeds)" + (f" in {cfg.workers} processes" if cfg.workers > 1 else "")
        )

        def done(r: dict) -> None:
            results.append(r)
            test = "-" if r["test_acc"] is None else f"{r['test_acc']:.2%}"
            say(
                f"final [{len(results)}/{len(jobs)}] trial {r['trial']} seed {r['seed']}: "
                f"test {test} ({r['outcome']}, {r['seconds']:.1f} s)"
            )

        if cfg.workers == 1:
            for job in jobs:
                done(train_job(job))
        else:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(cfg.workers, mp_context=ctx) as pool:
                for r in pool.map(train_job, jobs):
                    done(r)
        winner = jobs[0]
        weights = None
        if Path(winner.weights).exists():
            artifact_dir.mkdir(parents=True, exist_ok=True)
            artifact_id = upload_artifact(
                artifact_store=FileSystemArtifactStore(str(artifact_dir)),
                file_path=winner.weights,
                study_or_trial=study,
                mimetype="application/octet-stream",
            )
            weights = {
                "trial": winner.trial,
                "seed": winner.seed,
                "artifact_id": artifact_id,
                "path": str(artifact_dir / artifact_id),
                "format": WEIGHTS_FORMAT,
                "model": asdict(winner.model),
            }
    record = {
        "configs": _summarise(study, jobs, results),
        "train_images": "all" if winner.data.train_limit is None else winner.data.train_limit,
        "weights": weights,
        "command": command,
        "seconds": round(time.perf_counter() - start, 1),
    }
    study.set_user_attr("final", record)
    return record
