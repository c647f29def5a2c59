"""``nasfcn trials`` on a search with confirmation runs (a store built by hand)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from nasfcn.cli import app
from nasfcn.store import leaderboard_frame, set_test_metrics


def test_trials_rank_confirmed_networks_by_their_mean_with_test_beside_val(confirmed_search) -> None:
    store = confirmed_search()
    trial = int(leaderboard_frame(store, "conf").set_index("number").loc[7, "trial_id"])
    set_test_metrics(store, trial, {"miou": 0.55, "images": 32})
    url = str(store.engine.url)
    listed = CliRunner().invoke(app, ["trials", "--search", "conf", "--db", url, "--format", "json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [row["number"] for row in rows] == [7, 1, 6, 9, 2, 8, 0, 5, 4, 3]
    assert [row["tie_group"] for row in rows[:9:3]] == [1, 2, 1]
    table = CliRunner().invoke(app, ["trials", "--search", "conf", "--db", url])
    assert table.exit_code == 0, table.output
    assert "0.725" in table.stdout  # B's confirmed interval starts there
    assert "0.550" in table.stdout  # the test mIoU of B's exported run
    by_number = CliRunner().invoke(app, ["trials", "--search", "conf", "--db", url, "--sort", "number"])
    assert by_number.exit_code == 0, by_number.output
