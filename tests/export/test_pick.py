"""Which trial ``nasfcn export`` exports from a search with confirmation runs."""

from __future__ import annotations

import json

import pytest

from nasfcn.confirm import with_pooled
from nasfcn.export import export_trial, select_trial
from nasfcn.store import leaderboard_frame, set_test_metrics


def test_export_picks_the_confirmed_winner_not_the_best_single_run(confirmed_search) -> None:
    board = leaderboard_frame(confirmed_search(), "conf")
    assert board.iloc[0]["number"] == 0  # the best single run: network A, 0.80 once
    chosen = select_trial(board, "conf")
    assert int(chosen["number"]) == 7  # network B's best run: B has the best mean over its seeds
    assert int(select_trial(with_pooled(board), "conf", rank=1)["number"]) == 7  # rank 1 as the board shows
    assert int(select_trial(board, "conf", trial=0)["number"]) == 0


@pytest.mark.slow
def test_the_bundle_says_what_the_winner_was_confirmed_over(
    confirmed_search, shapes_checkpoint, tmp_path
) -> None:
    store = confirmed_search(checkpoint=shapes_checkpoint)
    trial_id = int(leaderboard_frame(store, "conf").set_index("number").loc[7, "trial_id"])
    set_test_metrics(store, trial_id, {"miou": 0.55, "images": 32})
    result = export_trial(store, tmp_path / "bundle", search="conf")
    metrics = json.loads((result.path / "metrics.json").read_text())
    assert metrics["source"]["trial"] == 7
    confirmed = metrics["confirmed"]
    assert confirmed["text"] == "confirmed over 3 seeds: mean 0.750 ± 0.010"
    assert confirmed["run_seeds"] == [0, 1, 2]
    assert confirmed["test_miou"] == pytest.approx(0.55)
    card = (result.path / "README.md").read_text()
    assert "confirmed over 3 seeds: mean 0.750 ± 0.010" in card
    assert "test mIoU 0.550 stored by the search" in card
