"""Final runs: a budgeted search's best networks trained again for the time it kept."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text

from nasfcn.export._pick import select_trial
from nasfcn.search import SearchConfig, SearchConfigError, execution_options, run_search, with_execution
from nasfcn.search._budgeting import used_before
from nasfcn.search._final import FILL, final_epochs, final_targets, median_epoch_s, plan_final
from nasfcn.search._phases import confirm_policy
from nasfcn.search._resume import UNRECORDED_BEFORE
from nasfcn.store import leaderboard_frame, open_store
from nasfcn.train import TrainRecipe

ROWS = [
    {"number": 0, "status": "completed", "best_miou": 0.50, "trial_key": "a", "epochs_trained": 8},
    {"number": 1, "status": "completed", "best_miou": 0.70, "trial_key": "a", "epochs_trained": 8},
    {"number": 2, "status": "stopped_early", "best_miou": 0.90, "trial_key": "b", "epochs_trained": 2},
    {"number": 3, "status": "completed", "best_miou": 0.60, "trial_key": "c", "epochs_trained": 8},
    {"number": 4, "status": "completed", "best_miou": 0.95, "trial_key": "d", "confirms": 3},
    {"number": 5, "status": "failed", "best_miou": None, "trial_key": "e"},
]
EPOCH_S = {0: 2.0, 1: 2.0, 2: 4.0, 3: 3.0}


def _epoch_s(row) -> float | None:
    return EPOCH_S.get(int(row["number"]))


def test_the_targets_are_the_best_completed_networks_then_the_best_stopped_ones() -> None:
    assert [row["number"] for row in final_targets(ROWS, 2)] == [1, 3]  # one per network, by val
    assert [row["number"] for row in final_targets(ROWS, 3)] == [1, 3, 2]  # then a stopped trial
    only_stopped = [row for row in ROWS if row["status"] != "completed"]
    assert [row["number"] for row in final_targets(only_stopped, 2)] == [2]  # a confirmation is no target


def test_each_final_run_fills_the_time_kept_at_its_own_networks_epoch_cost() -> None:
    plan = plan_final(ROWS, 2, seconds=100.0, seed=7, epoch_seconds=_epoch_s, overhead_s=4.0)
    assert [run.target["number"] for run in plan.runs] == [1, 3]
    assert [run.overrides for run in plan.runs] == [
        {"seed": 7, "epochs": int(FILL * 96 / 2.0)},
        {"seed": 7, "epochs": int(FILL * 96 / 3.0)},
    ]
    assert [run.mark for run in plan.runs] == [{"extends": 1}, {"extends": 3}]
    assert all(run.number is None for run in plan.runs)  # new trials, numbered next
    assert f"trial 1's network for {int(FILL * 96 / 2.0)} epochs (it trained 8)" in plan.describe()


def test_no_final_run_for_a_network_it_would_not_train_for_longer() -> None:
    plan = plan_final(ROWS, 2, seconds=30.0, seed=0, epoch_seconds=_epoch_s, overhead_s=4.0)
    assert [run.target["number"] for run in plan.runs] == [1]  # 11 epochs at 2 s; 7 at 3 s: not > 8
    assert plan_final(ROWS, 2, seconds=5.0, seed=0, epoch_seconds=_epoch_s, overhead_s=4.0).why_none
    nothing = plan_final(ROWS[5:], 2, seconds=500.0, seed=0, epoch_seconds=_epoch_s, overhead_s=4.0)
    assert nothing.runs == []
    assert "no trial" in nothing.why_none


def test_a_resume_reruns_an_interrupted_final_run_under_its_number_and_never_a_finished_one() -> None:
    interrupted = {"number": 6, "status": "interrupted", "trial_key": "a", "extends": 1}
    finished = {"number": 7, "status": "completed", "best_miou": 0.8, "trial_key": "c", "extends": 3}
    plan = plan_final([*ROWS, interrupted, finished], 2, 100.0, 0, _epoch_s, 4.0)
    assert [(run.target["number"], run.number) for run in plan.runs] == [(1, 6)]
    done = plan_final([*ROWS, {**interrupted, "status": "completed"}, finished], 2, 100.0, 0, _epoch_s, 4.0)
    assert done.runs == []
    assert done.why_none == "every final run finished before"
    # before any final run finished, an interrupted one keeps its number among the new targets
    fresh = plan_final([*ROWS, interrupted], 2, 100.0, 0, _epoch_s, 4.0)
    assert [(run.target["number"], run.number) for run in fresh.runs] == [(1, 6), (3, None)]


def test_epochs_and_costs_are_plain_arithmetic() -> None:
    assert final_epochs(100.0, 2.0, 0.0) == int(FILL * 50)
    assert final_epochs(3.0, 2.0, 4.0) == 0
    assert final_epochs(100.0, 0.0, 0.0) == 0
    assert median_epoch_s([3.0, 1.0, float("nan"), 2.0]) == 2.0
    assert median_epoch_s([]) is None


def _board(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for column in ("confirms", "extends", "latency_ms", "rank"):
        if column not in frame:
            frame[column] = None
    frame["latency_ms"] = frame["latency_ms"].fillna(1.0)
    return frame


def test_export_picks_the_best_final_run_even_over_a_better_val_of_a_shorter_run() -> None:
    board = _board(
        [
            {"number": 0, "status": "completed", "best_miou": 0.80},
            {"number": 1, "status": "completed", "best_miou": 0.60},
            {"number": 2, "status": "stopped_early", "best_miou": 0.75, "extends": 0},
            {"number": 3, "status": "completed", "best_miou": 0.70, "extends": 1},
            {"number": 4, "status": "interrupted", "best_miou": 0.99, "extends": 1},
        ]
    )
    assert int(select_trial(board, "s")["number"]) == 2  # stopped by the budget's end: still trained
    assert int(select_trial(board.iloc[[0, 1]], "s")["number"]) == 0  # no final run: as before
    assert int(select_trial(board, "s", trial=1)["number"]) == 1  # an explicit choice still wins


def test_final_share_is_checked_and_older_searches_resume_without_final_runs() -> None:
    with pytest.raises(SearchConfigError, match=r"--final-share must be between 0 \(no final runs\) and 0.9"):
        SearchConfig(space="x.yaml", final_share=0.95)
    assert UNRECORDED_BEFORE["final_share"] == 0.0


def test_final_runs_turn_the_default_confirmation_off_but_not_an_asked_one() -> None:
    budgeted = SearchConfig(space="x.yaml", time_budget_min=15.0)
    assert confirm_policy(budgeted) is not None  # the default with a budget
    assert confirm_policy(replace(budgeted, final_share=0.5)) is None
    asked = replace(budgeted, final_share=0.5, confirm_top=2)
    assert confirm_policy(asked) is not None
    assert confirm_policy(asked).top == 2


def _budgeted(micro_space: Path, tmp_path: Path, **changes) -> SearchConfig:
    """A budgeted random search of ``micro_space`` with final runs on half its budget."""
    options = {
        "space": str(micro_space),
        "epochs": 2,
        "strategy": "random",
        "image_size": 32,
        "train_samples": 16,
        "val_samples": 8,
        "recipe": TrainRecipe(epochs=2, batch_size=8),
        "confirm_top": 0,
        "final_share": 0.5,
        "db": f"sqlite:///{tmp_path / 'nasfcn.db'}",
        "storage_path": str(tmp_path / "runs"),
        "concurrency": 2,
        "quiet": True,
        **changes,
    }
    execution, rest = execution_options(options)
    return SearchConfig(**rest, execution=execution)


@pytest.mark.slow
def test_final_runs_extend_the_best_trials_export_picks_them_and_a_resume_trains_an_interrupted_one(
    ray_local: None, micro_space: Path, tmp_path: Path
) -> None:
    """A budgeted search ends with final runs: the same networks and seeds as trials of the
    search proper, trained for longer, and export picks among them. Then --trials reached and
    one final run left interrupted (a driver stopped between the two): the resume still has a
    budget keeper and time for the final phase, and trains that one run again under its
    number, without repeating the finished one. (One search for both: each takes ~50 s.)"""
    url = f"sqlite:///{tmp_path / 'nasfcn.db'}"
    config = _budgeted(micro_space, tmp_path, name="r", time_budget_min=0.75, trials=2)
    summary = run_search(config)
    store = open_store(url)
    before = leaderboard_frame(store, "r")
    proper = before[before["extends"].isna()]
    finals = before[before["extends"].notna()].sort_values("number")
    assert len(proper) == 2
    assert set(proper["status"]) <= {"completed", "stopped_early"}  # both count against --trials
    assert 1 <= len(finals) <= 2
    assert set(finals["status"]) <= {"completed", "stopped_early"}
    for row in finals.itertuples():
        source = proper[proper["number"] == int(row.extends)].iloc[0]
        assert row.arch_id == source.arch_id
        assert row.seed == source.seed
        assert row.epochs_trained > source.epochs_trained  # the same network, trained for longer
    picked = select_trial(before, "r")
    assert int(picked["extends"]) in set(proper["number"].astype(int))
    assert summary.best_trial == int(picked["number"])

    last = int(finals["number"].iloc[-1])
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE trials SET status = 'interrupted' WHERE number = :n"), {"n": last})

    budget = (used_before(store, "r") + 30.0) / 60  # a longer budget: half a minute more
    again = replace(config, time_budget_min=budget, explicit=frozenset({"name", "time_budget_min"}))
    run_search(with_execution(again, resume=True))
    after = leaderboard_frame(open_store(url), "r")
    assert len(after) == len(before)  # nothing repeated, nothing new in the search proper
    rerun = after[after["number"] == last].iloc[0]
    assert rerun["status"] in {"completed", "stopped_early"}  # trained again under its own number
    assert int(rerun["extends"]) == int(finals["extends"].iloc[-1])
    for row in finals.iloc[:-1].itertuples():  # a final run that finished is not trained again
        same = after[after["number"] == int(row.number)].iloc[0]
        assert same["status"] == row.status
        assert same["epochs_trained"] == row.epochs_trained
