"""The reads the leaderboard adds: per-class IoU at the best epoch, trial times, search details."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from nasfcn.space import load_space
from nasfcn.store import (
    EPOCH_COLUMNS,
    NoSuchSearchError,
    NoSuchTrialError,
    Store,
    create_search,
    epochs_frame,
    finish_trial,
    open_store,
    pareto_front,
    per_class_iou_frame,
    record_epoch,
    search_details,
    trial_search,
    trial_times_frame,
    upsert_trial,
)

SPACE = load_space("search_spaces/fcn_tiny.yaml")
RECIPE = {"epochs": 2}


def _trial(store: Store, search: int, number: int, per_epoch: list[list[float | None]], status: str) -> int:
    trial = upsert_trial(
        store, search, number, SPACE.sample(number), dataset="shapes", recipe=RECIPE, status="running"
    )
    for epoch, ious in enumerate(per_epoch, start=1):
        known = [v for v in ious if v is not None]
        metrics = {"val_miou": sum(known) / len(known), "val_per_class_iou": ious}
        record_epoch(store, trial, epoch, metrics)
    finish_trial(store, trial, status)
    return trial


def test_per_class_iou_at_each_trials_best_epoch(db_url: str) -> None:
    store = open_store(db_url)
    first = create_search(store, "a", "shapes")
    best = _trial(store, first, 0, [[0.1, 0.2, 0.3], [0.5, None, 0.7], [0.4, 0.4, 0.4]], "completed")
    _trial(store, first, 1, [], "failed")
    second = create_search(store, "b", "shapes")
    cached = upsert_trial(store, second, 0, SPACE.sample(0), dataset="shapes", recipe=RECIPE)
    finish_trial(store, cached, "cached", cached_from=best)

    frame = per_class_iou_frame(store, "a")
    assert list(frame.columns) == ["trial_id", "number", "arch_id", "class_index", "iou"]
    assert list(frame["trial_id"]) == [best] * 3  # the failed trial has no epochs
    assert frame["iou"].iloc[0] == pytest.approx(0.5)  # epoch 2 (mIoU 0.6), not the last
    assert math.isnan(frame["iou"].iloc[1])
    reused = per_class_iou_frame(store, "b")
    assert list(reused["trial_id"]) == [cached] * 3  # a cached trial shows the epoch it reused
    assert list(reused["iou"].fillna(-1)) == pytest.approx([0.5, -1, 0.7])
    assert list(per_class_iou_frame(store, trial_ids=[cached, best])["trial_id"]) == [best] * 3 + [cached] * 3


def test_trial_times_search_details_and_trial_lookup(db_url: str) -> None:
    store = open_store(db_url)
    sid = create_search(store, "<named>", "digits", space_name="tiny", config={"class_names": ["bg", "one"]})
    trial = _trial(store, sid, 0, [[0.5, 0.5]], "completed")
    times = trial_times_frame(store, "<named>")
    assert list(times["trial_id"]) == [trial]
    assert times.loc[0, "started_at"] <= times.loc[0, "finished_at"]
    assert str(times["finished_at"].dt.tz) == "UTC"
    details = search_details(store)  # the latest
    assert details["name"] == "<named>"
    assert details["dataset"] == "digits"
    assert details["status"] == "running"
    assert details["class_names"] == ("bg", "one")
    assert trial_search(store, trial) == "<named>"
    with pytest.raises(NoSuchTrialError, match="no trial with id 999"):
        trial_search(store, 999)
    other = create_search(store, "plain", "shapes")
    assert other != sid
    assert search_details(store, "plain")["class_names"] is None
    with pytest.raises(NoSuchSearchError, match="searches: <named>, plain"):
        search_details(store, "missing")


def test_epochs_frame_reads_only_the_columns_asked_for(db_url: str) -> None:
    store = open_store(db_url)
    search = create_search(store, "c", "shapes")
    _trial(store, search, 0, [[0.1, 0.3], [0.5, 0.7]], "completed")
    curves = epochs_frame(store, "c", columns=("epoch", "val_miou"))
    assert list(curves.columns) == ["trial_id", "number", "arch_id", "status", "epoch", "val_miou"]
    assert list(curves["val_miou"]) == pytest.approx([0.2, 0.6])
    assert list(epochs_frame(store, "c").columns)[4:] == list(EPOCH_COLUMNS)
    with pytest.raises(ValueError, match="unknown epoch columns \\['params'\\]; valid: epoch, train_loss"):
        epochs_frame(store, "c", columns=("epoch", "params"))


def _dominated_by_definition(values: np.ndarray) -> np.ndarray:
    """The front by its definition, pair by pair: no row is at least as good on both and better on one."""
    valid = ~np.isnan(values).any(axis=1)
    front = np.zeros(len(values), dtype=bool)
    for i in np.flatnonzero(valid):
        others = values[valid]
        front[i] = not np.any(np.all(others <= values[i], axis=1) & np.any(others < values[i], axis=1))
    return front


@pytest.mark.parametrize("seed", range(20))
def test_the_two_objective_front_is_the_definitions_front(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 60))
    frame = pd.DataFrame(  # few distinct values: ties on one objective or both are common
        {"best_miou": rng.integers(0, 6, n) / 5, "latency_ms": rng.integers(0, 6, n).astype(float)}
    )
    frame.loc[rng.random(n) < 0.15, "latency_ms"] = np.nan
    frame.loc[rng.random(n) < 0.1, "best_miou"] = np.nan
    expected = _dominated_by_definition(frame.to_numpy() * np.array([-1.0, 1.0]))
    assert list(pareto_front(frame, ("miou", "latency_ms"))) == list(expected)
