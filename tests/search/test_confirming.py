"""Confirmation runs at the end of a search, on a real local Ray and SQLite (no mocks)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import text

from nasfcn.confirm import ConfirmPolicy
from nasfcn.search import SearchConfig, execution_options, run_search, with_execution
from nasfcn.search._budgeting import used_before
from nasfcn.search._confirming import (
    RerunSearch,
    confirmation_reruns,
    confirmation_seconds,
    plan_confirmation,
)
from nasfcn.store import leaderboard_frame, open_store
from nasfcn.train import TrainRecipe


def _config(tmp_path: Path, space: Path, **overrides) -> SearchConfig:
    options = {
        "space": str(space),
        "data": "shapes",
        "name": "c",
        "trials": 3,
        "epochs": 1,
        "strategy": "random",
        "scheduler": "fifo",
        "seed": 5,
        "db": f"sqlite:///{tmp_path / 'nasfcn.db'}",
        "storage_path": str(tmp_path / "runs"),
        "image_size": 32,
        "train_samples": 16,
        "val_samples": 8,
        "recipe": TrainRecipe(epochs=1, batch_size=8),
        "concurrency": 2,
        "quiet": True,
        "confirm_top": 2,
        "confirm_seeds": 2,
    }
    options.update(overrides)
    execution, rest = execution_options(options)
    return SearchConfig(**rest, execution=execution)


def _confirmations(url: str):
    board = leaderboard_frame(open_store(url), "c")
    return board, board[board["confirms"].notna()]


@pytest.mark.slow
def test_confirmation_reseeds_the_top_networks_and_a_resume_neither_repeats_nor_loses_them(
    ray_local, tmp_path, micro_space
) -> None:
    from nasfcn.export import confirmed_winner

    config = _config(tmp_path, micro_space)
    summary = run_search(config)
    url = config.execution.db
    board, runs = _confirmations(url)
    assert summary.best_trial == int(confirmed_winner(board)["number"])  # the best mean, not one run
    proper = board[board["confirms"].isna()]
    assert len(proper) == 3  # confirmation runs do not count against --trials
    ranked = proper.dropna(subset=["best_miou"]).sort_values(["best_miou", "number"], ascending=[False, True])
    top = ranked.drop_duplicates(subset=["genotype_json"])["number"].head(2).astype(int).tolist()
    assert len(runs) == 2 * 2
    assert sorted(runs["confirms"].astype(int).unique()) == sorted(top)
    for number, group in runs.groupby("confirms"):
        original = board[board["number"] == int(number)].iloc[0]
        assert set(group["seed"]) == {6, 7}  # the search's seed 5, then distinct extra seeds
        assert set(group["genotype_json"]) == {original["genotype_json"]}
        assert set(group["status"]) == {"completed"}
    numbers = sorted(runs["number"].astype(int))

    store = open_store(url)
    with store.engine.begin() as connection:  # a driver killed during one confirmation run
        connection.execute(
            text("UPDATE trials SET status = 'interrupted' WHERE number = :n"), {"n": numbers[-1]}
        )
    run_search(with_execution(replace(config, explicit=frozenset({"name"})), resume=True))
    board, again = _confirmations(url)
    assert len(board) == 3 + 4  # nothing repeated, nothing lost
    assert sorted(again["number"].astype(int)) == numbers
    assert set(again["status"]) == {"completed"}  # the interrupted one ran again under its number


@pytest.mark.slow
def test_a_budgeted_resume_with_the_trials_run_confirms_from_the_recorded_epochs(
    ray_local, tmp_path, micro_space
) -> None:
    """--trials reached, the confirmation runs left interrupted (or never started): the resume
    trains nothing before its confirmation, so it measures no epoch; it plans the confirmation
    from the epochs the search recorded instead of skipping it."""
    config = _config(tmp_path, micro_space, trials=2, time_budget_min=0.75, final_share=0.0)
    run_search(config)
    url = config.execution.db
    store = open_store(url)
    board, runs = _confirmations(url)
    assert len(board[board["confirms"].isna()]) == 2
    earlier = sorted(runs["number"].astype(int))
    with store.engine.begin() as connection:  # a driver killed during its confirmation
        connection.execute(text("UPDATE trials SET status = 'interrupted' WHERE confirms IS NOT NULL"))

    budget = (used_before(store, "c") + 45.0) / 60
    again = replace(config, time_budget_min=budget, explicit=frozenset({"name", "time_budget_min"}))
    run_search(with_execution(again, resume=True))
    board, runs = _confirmations(url)
    assert len(board) == 2 + 4  # nothing repeated in the search proper, every confirmation run there
    assert set(runs["status"]) <= {"completed", "stopped_early"}
    assert set(runs["number"].astype(int)) >= set(earlier)  # an interrupted run trains under its number


def test_a_plan_confirms_distinct_networks_and_skips_what_finished() -> None:
    rows = [
        {"number": 0, "status": "completed", "best_miou": 0.5, "trial_key": "a", "seed": 0},
        {"number": 1, "status": "completed", "best_miou": 0.7, "trial_key": "a", "seed": 0},
        {"number": 2, "status": "stopped_early", "best_miou": 0.9, "trial_key": "b", "seed": 0},
        {"number": 3, "status": "completed", "best_miou": 0.6, "trial_key": "c", "seed": 0},
        {"number": 4, "status": "completed", "best_miou": 0.1, "trial_key": "d", "seed": 0},
        {"number": 5, "status": "completed", "best_miou": 0.8, "trial_key": "a", "seed": 1, "confirms": 1},
        {"number": 6, "status": "interrupted", "best_miou": None, "trial_key": "a", "seed": 2, "confirms": 1},
    ]
    plan = plan_confirmation(rows, ConfirmPolicy(top=2, seeds=2), seed=0)
    assert [row["number"] for row in plan.targets] == [1, 3]  # one per network; stopped early is no full run
    assert [(r.confirms, r.seed, r.number) for r in plan.runs] == [(1, 2, 6), (3, 1, None), (3, 2, None)]


def test_confirmation_runs_train_the_confirmed_trials_full_schedule_with_their_seed(micro_space) -> None:
    from ray.tune.search import Searcher

    from nasfcn.space import load_space

    genotype = next(iter(load_space(str(micro_space)).iter_genotypes(include_train=False)))
    rows = [
        {
            "number": 3,
            "status": "completed",
            "best_miou": 0.5,
            "trial_key": genotype.trial_key,
            "seed": 0,
            "genotype_json": genotype.to_json(),
            "epochs_trained": 4,
        }
    ]
    plan = plan_confirmation(rows, ConfirmPolicy(top=1, seeds=2), seed=0)
    search = RerunSearch(confirmation_reruns(plan, 9), {"epochs": 9, "seed": 0}, first_number=7)
    first, second = search.suggest("t0"), search.suggest("t1")
    assert (first["number"], second["number"]) == (7, 8)
    assert first["confirms"] == second["confirms"] == 3
    assert first["genotype"] == genotype.to_json()
    assert [first["recipe_overrides"], second["recipe_overrides"]] == [
        {"seed": 1, "epochs": 4},
        {"seed": 2, "epochs": 4},
    ]
    assert search.suggest("t2") == Searcher.FINISHED


def test_confirmation_time_is_whole_rounds_of_full_trials() -> None:
    assert confirmation_seconds(6, 2, epochs=4, epoch_s=10.0, overhead_s=5.0) == 3 * 45.0
    assert confirmation_seconds(0, 2, epochs=4, epoch_s=10.0, overhead_s=5.0) == 0.0


@pytest.mark.slow
def test_confirmed_networks_select_on_val_and_their_test_figures_come_from_the_test_split(
    held_out_search, tmp_path
) -> None:
    import json

    from nasfcn.export import test_confirmed

    search = held_out_search  # two trials, the best confirmed over two seeds (tests/search/conftest.py)
    store = open_store(search.copy(tmp_path))
    board = leaderboard_frame(store, search.name)
    assert board["confirms"].notna().sum() == 2
    for folder in board["checkpoint"]:  # every run, confirmation runs too, as the worker scored it
        selected = json.loads((Path(folder) / "best.json").read_text())["epoch"]
        assert selected["val_num_pixels"] == search.val_images * search.side**2  # val images, nothing else
        assert selected["val_per_class_accuracy"][2] is None  # no test-marker pixel in the ground truth

    lines = test_confirmed(store, search.name)
    board = leaderboard_frame(store, search.name)
    tested = board[board["test_miou"].notna()]
    assert len(tested) == 1
    assert len(lines) == 1
    with store.engine.connect() as connection:
        stored = connection.execute(
            text("SELECT test_metrics_json FROM trials WHERE id = :id"),
            {"id": int(tested["trial_id"].iloc[0])},
        ).scalar_one()
    figures = json.loads(stored)
    assert figures["images"] == search.test_images
    assert figures["per_class_iou"]["test_marker"] is not None  # the marker is there, in test only
    assert test_confirmed(store, search.name) == []  # evaluated once
