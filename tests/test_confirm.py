"""Pooling confirmation runs, ranking by their mean and tie groups (``nasfcn.confirm``)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from nasfcn.confirm import (
    CONFIRM_SEEDS,
    CONFIRM_TOP,
    ConfirmPolicy,
    overlap_groups,
    policy_for,
    pooled,
    with_pooled,
)
from nasfcn.store import leaderboard_frame


def test_runs_pool_with_the_trial_they_confirm_and_rank_by_their_mean(confirmed_search) -> None:
    board = with_pooled(leaderboard_frame(confirmed_search(), "conf"))
    stats = pooled(board).set_index("group")
    assert list(stats.index) == [1, 2, 0]  # B 0.750, D 0.680, A 0.673: A's 0.80 was one lucky seed
    assert stats.loc[1, "confirmed_n"] == 3
    assert stats.loc[1, "confirmed_mean"] == pytest.approx(0.75)
    assert stats.loc[1, "confirmed_sd"] == pytest.approx(0.01)
    assert stats.loc[1, "confirmed_ci_low"] == pytest.approx(0.75 - 4.302653 * 0.01 / math.sqrt(3))
    # A's interval is wide and reaches B's: tied with the leader; D's lies below it: group 2
    assert stats["tie_group"].to_dict() == {1: 1, 2: 2, 0: 1}
    assert board["number"].tolist()[:3] == [7, 1, 6]  # B's runs first, best val first
    ranks = dict(zip(board["number"], board["rank"], strict=True))
    assert [ranks[n] for n in (7, 1, 6, 9, 2, 8, 0, 5, 4, 3)] == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4]
    assert math.isnan(board.loc[board["number"] == 3, "confirmed_n"].iloc[0])  # C: not confirmed


def test_a_search_without_confirmation_runs_keeps_its_order_and_ranks() -> None:
    trials = pd.DataFrame(
        {"number": [0, 1], "confirms": [None, None], "status": ["completed"] * 2, "best_miou": [0.5, 0.4]}
    ).assign(rank=[1.0, 2.0])
    ranked = with_pooled(trials)
    assert ranked["rank"].tolist() == [1.0, 2.0]
    assert ranked["confirmed_n"].isna().all()


def test_overlapping_intervals_share_the_leaders_group() -> None:
    assert overlap_groups([(0.7, 0.8), (0.65, 0.72), (0.5, 0.6), (0.55, 0.58), (0.1, 0.2)]) == [1, 1, 2, 2, 3]
    assert overlap_groups([(math.nan, math.nan), (0.1, 0.2)]) == [1, 1]  # one run: cannot be told apart


def test_confirmation_is_on_when_asked_or_under_a_time_budget() -> None:
    assert policy_for(None, None, budgeted=False) is None  # --trials: as before
    assert policy_for(None, None, budgeted=True) == ConfirmPolicy(CONFIRM_TOP, CONFIRM_SEEDS)
    assert policy_for(2, None, budgeted=False) == ConfirmPolicy(2, CONFIRM_SEEDS)
    assert policy_for(0, 3, budgeted=True) is None
