"""The reads the leaderboard adds: per-class IoU at the best epoch, trial times, search details."""

from __future__ import annotations

import math

import pytest

from nasfcn.space import load_space
from nasfcn.store import (
    NoSuchSearchError,
    NoSuchTrialError,
    Store,
    create_search,
    finish_trial,
    open_store,
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
