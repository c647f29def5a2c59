"""Bulk writes: many rows in one transaction, all or nothing, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from nasfcn.space import load_space
from nasfcn.store import (
    BULK_TABLES,
    StoreError,
    add_architectures,
    bulk_insert,
    create_search,
    epochs_frame,
    leaderboard_frame,
    open_store,
    trial_times_frame,
)
from nasfcn.store._bulk import CHUNK

SPACE = "search_spaces/fcn_small.yaml"


def _trial(search: int, number: int, genotype) -> dict:
    began = datetime(2026, 11, 1, tzinfo=timezone.utc)
    return {
        "search_id": search,
        "number": number,
        "arch_id": genotype.arch_id,
        "trial_key": genotype.trial_key,
        "genotype_json": genotype.to_json(),
        "dataset": "shapes",
        "recipe_key": "bulk",
        "seed": 0,
        "status": "completed",
        "best_epoch": 1,
        "best_miou": number / 10_000,
        "final_miou": number / 10_000,
        "epochs_trained": 1,
        "started_at": began,
        "finished_at": began,
    }


def test_more_rows_than_a_chunk_arrive_whole(db_url: str) -> None:
    store = open_store(db_url)
    space = load_space(SPACE)
    genotypes = [space.sample(n) for n in range(CHUNK + 5)]
    add_architectures(store, {g.arch_id: g.arch_json() for g in genotypes})
    add_architectures(store, {g.arch_id: g.arch_json() for g in genotypes[:3]})  # known ones are kept
    search = create_search(store, "bulk", "shapes")
    bulk_insert(store, "trials", (_trial(search, n, g) for n, g in enumerate(genotypes)))
    times = trial_times_frame(store, "bulk")
    ids = dict(zip(times["number"], times["trial_id"], strict=True))
    costs = ({"trial_id": ids[n], "arch_id": g.arch_id, "params": n} for n, g in enumerate(genotypes))
    bulk_insert(store, "trial_costs", costs)
    bulk_insert(store, "epochs", ({"trial_id": t, "epoch": 1, "val_miou": 0.5} for t in ids.values()))
    frame = leaderboard_frame(store, "bulk")
    assert len(frame) == CHUNK + 5
    assert frame["best_miou"].iloc[0] == pytest.approx((CHUNK + 4) / 10_000)
    assert sorted(frame["params"]) == list(range(CHUNK + 5))
    assert len(epochs_frame(store, "bulk")) == CHUNK + 5


def test_a_failing_row_leaves_nothing_of_the_call(db_url: str) -> None:
    store = open_store(db_url)
    space = load_space(SPACE)
    genotypes = [space.sample(n) for n in range(3)]
    add_architectures(store, {g.arch_id: g.arch_json() for g in genotypes})
    search = create_search(store, "bulk", "shapes")
    rows = [_trial(search, n, g) for n, g in enumerate(genotypes)]
    with pytest.raises(StoreError, match=r"(?i)unique"):
        bulk_insert(store, "trials", [*rows, {**rows[0]}])  # (search, number) is unique
    assert leaderboard_frame(store, "bulk").empty


def test_only_the_result_tables_are_written_in_bulk(tmp_path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'n.db'}")
    with pytest.raises(ValueError, match=r"bulk_insert writes trials, trial_costs, epochs, not 'searches'"):
        bulk_insert(store, "searches", [])
    assert BULK_TABLES == ("trials", "trial_costs", "epochs")
