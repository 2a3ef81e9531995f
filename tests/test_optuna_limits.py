"""Where Optuna's own mechanisms stop short of the queue's guarantees: each test shows one case,
so that the private mechanism the service keeps for it keeps its reason (see the docstrings of
search.study.queue and search.study.running.runner)."""

from __future__ import annotations

import datetime

import optuna
import pytest
from optuna.trial import TrialState

from search.study.queue.recovery import fail_dead_trials
from search.study.running.budget import counted_trials
from search.study.running.checkpoints import requeue_interrupted
from search.study.storage import records
from search.study.storage.internals import trial_id
from search.study.storage.storage import open_storage


@pytest.fixture
def study(tmp_path) -> optuna.Study:
    return optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path}/s.db"))


def interrupt(study: optuna.Study) -> optuna.Trial:
    """A trial stopped by Ctrl-C or SIGTERM, as the runner records it."""
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    for key, value in records.failure(records.FailKind.INTERRUPTED, "interrupted").items():
        trial.set_user_attr(key, value)
    study.tell(trial, state=TrialState.FAIL)
    return trial


def test_optuna_beats_a_trials_heartbeat_only_inside_optimize_so_the_runner_beats_its_own(study):
    # The runner cannot use optimize: a grid's trials are claimed, never popped (claims.py).
    with pytest.warns(UserWarning, match="Heartbeat of storage is supposed to be used with"):
        study.ask()


def test_optunas_retry_callback_reruns_no_trial_that_a_stop_failed(tmp_path, study):
    """Optuna's RetryHeartbeatStaleTrialCallback sees stale trials only; a preempted trial
    (SIGTERM) is failed by its own worker, and only requeue_interrupted runs it again."""
    storage = optuna.storages.RDBStorage(
        f"sqlite:///{tmp_path}/s.db",
        heartbeat_interval=5,
        failed_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(),
    )
    stopped = interrupt(optuna.load_study(study_name=study.study_name, storage=storage))
    optuna.storages.fail_stale_trials(study)
    assert study.get_trials(states=(TrialState.WAITING,)) == []  # Optuna: nothing to rerun
    assert requeue_interrupted(study) == 1  # ours: its parameters, to go on from its checkpoint
    (waiting,) = study.get_trials(states=(TrialState.WAITING,))
    assert waiting.user_attrs[records.RESUME_OF] == stopped.number


def test_optunas_retry_callback_copies_the_dead_workers_records_onto_the_rerun(tmp_path, study):
    """Its copy would carry the dead owner and the failure into the new trial: the service
    requeues with its own records instead (records.RESUME_OF)."""
    storage = optuna.storages.RDBStorage(
        f"sqlite:///{tmp_path}/s.db",
        heartbeat_interval=5,
        grace_period=1,
        failed_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(),
    )
    mine = optuna.load_study(study_name=study.study_name, storage=storage)
    with pytest.warns(UserWarning):
        dead = mine.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    dead.set_user_attr(records.WORKER, {"host": "gone", "pid": 1})
    storage.record_heartbeat(trial_id(dead))
    with storage.engine.begin() as con:  # its last beat was long ago
        con.exec_driver_sql("UPDATE trial_heartbeats SET heartbeat = datetime('now', '-1 hour')")
    optuna.storages.fail_stale_trials(mine)
    (rerun,) = mine.get_trials(states=(TrialState.WAITING,))
    assert rerun.user_attrs[records.WORKER] == {"host": "gone", "pid": 1}


def test_optunas_max_trials_callback_stops_only_inside_optimize(study):
    """The runner's loop is ask and tell, so the budget is counted by counted_trials, which also
    leaves out interrupted trials: their points run again."""
    interrupt(study)
    done = study.ask()
    study.tell(done, 1.0)
    with pytest.raises(RuntimeError, match="supposed to be invoked inside"):
        optuna.study.MaxTrialsCallback(1)(study, study.trials[-1])
    assert counted_trials(study) == 1


def test_optunas_stale_check_never_fails_a_trial_that_never_beat(tmp_path, study):
    """A worker killed between its claim and its first beat leaves a RUNNING trial with neither
    a heartbeat nor an owner: Optuna's check skips it however old it is, so fail_dead_trials
    fails it once it is OWNERLESS_GRACE_S old."""
    storage = optuna.storages.RDBStorage(
        f"sqlite:///{tmp_path}/s.db", heartbeat_interval=1, grace_period=1
    )
    mine = optuna.load_study(study_name=study.study_name, storage=storage)
    with pytest.warns(UserWarning):
        claimed = mine.ask()
    an_hour_ago = datetime.datetime.now() - datetime.timedelta(hours=1)
    with storage.engine.begin() as con:
        con.exec_driver_sql("UPDATE trials SET datetime_start = ?", (an_hour_ago,))
    optuna.storages.fail_stale_trials(mine)
    assert mine.get_trials()[0].state == TrialState.RUNNING  # Optuna: an hour, still on
    assert fail_dead_trials(mine) == [claimed.number]  # ours
