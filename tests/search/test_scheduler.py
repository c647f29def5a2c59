"""ASHA's rungs after a resume: refilled from stored epochs, as if the search never stopped."""

from __future__ import annotations

from dataclasses import dataclass

from nasfcn.search import SearchConfig
from nasfcn.search._scheduler import make_scheduler, replay

CONTINUE, STOP = "CONTINUE", "STOP"


@dataclass(frozen=True)
class _Trial:
    trial_id: str


def _asha(**overrides):
    options = {"space": "x.yaml", "epochs": 4, "grace_period": 1, "reduction_factor": 2, "scheduler": "asha"}
    return make_scheduler(SearchConfig(**{**options, **overrides}))


def _first_epoch(scheduler, miou: float) -> str:
    trial = _Trial(f"new-{miou}")
    scheduler.on_trial_add(None, trial)
    return scheduler.on_trial_result(None, trial, {"training_iteration": 1, "val_miou": miou})


def test_a_fresh_scheduler_lets_any_first_trial_through() -> None:
    assert _first_epoch(_asha(), 0.01) == CONTINUE  # nothing at the rung to compare with


def test_replayed_rungs_stop_a_new_trial_below_the_cutoff() -> None:
    scheduler = _asha()
    assert replay(scheduler, [[0.5, 0.6, 0.7, 0.8], [0.4, 0.5, 0.6, 0.7], [0.2, 0.25]]) == 3
    # rung 1 holds 0.5, 0.4 and 0.2: the median, 0.4, is the bar for a new trial
    assert _first_epoch(scheduler, 0.3) == STOP
    assert _first_epoch(scheduler, 0.45) == CONTINUE


def test_replay_matches_the_live_run() -> None:
    histories = [[0.3, 0.4, 0.5, 0.6], [0.35, 0.3], [0.5, 0.55, 0.6, 0.62], [0.1, 0.2]]
    live, replayed = _asha(), _asha()
    for index, history in enumerate(histories):  # the callbacks Ray makes, decisions obeyed
        trial = _Trial(f"live-{index}")
        live.on_trial_add(None, trial)
        for epoch, miou in enumerate(history, start=1):
            result = {"training_iteration": epoch, "val_miou": miou}
            if live.on_trial_result(None, trial, result) == STOP:
                break
        live.on_trial_complete(None, trial, result)
    replay(replayed, histories)
    for miou in (0.05, 0.32, 0.4, 0.7):
        assert _first_epoch(live, miou) == _first_epoch(replayed, miou)


def test_trials_that_never_trained_are_skipped() -> None:
    scheduler = _asha()
    assert replay(scheduler, [[], []]) == 0  # cached or rejected trials
    assert _first_epoch(scheduler, 0.01) == CONTINUE


def test_fifo_ignores_histories() -> None:
    from ray.tune.schedulers import FIFOScheduler

    assert isinstance(_asha(scheduler="fifo"), FIFOScheduler)
