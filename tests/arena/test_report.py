"""The arena's JSON summary agrees with ``compare``; its HTML report has every figure."""

from __future__ import annotations

import json
import math
import re

import pytest

from nasfcn.arena import (
    JSON_FORMAT,
    ArenaPlan,
    ArenaTable,
    arena_json,
    compare,
    render_arena_html,
    replays,
    run_arena,
)
from nasfcn.table import Table

PLAN = ArenaPlan(("random", "tpe"), ("fifo", "asha"), trials=8, repeats=4, concurrency=2, seed=7)


@pytest.fixture(scope="module")
def run(table: Table):
    return run_arena(ArenaTable(table), PLAN, "report-test")


def test_the_json_holds_what_compare_measures(run, table: Table) -> None:
    board = ArenaTable(table)
    direct = compare(replays(board, PLAN.searches(), 4, seed=7), board.target(0.01), seed=7).summary
    data = json.loads(json.dumps(arena_json(run), allow_nan=False))
    assert data["format"] == JSON_FORMAT
    assert data["table"]["hash"] == table.facts["checksum"]
    assert (data["trials"], data["repeats"], data["concurrency"], data["seed"]) == (8, 4, 2, 7)
    assert data["target"] == {
        "miou": pytest.approx(board.best_mean),
        "spec": "1%",
        "architectures_reaching": 1,
    }
    assert data["budget_epochs"] == run.summary.budget
    assert {"nasfcn", "optuna", "ray", "numpy", "scipy"} <= set(data["versions"])
    assert [p["pair"] for p in data["pairs"]] == list(direct["pair"])
    for entry, row in zip(data["pairs"], direct.to_dict("records"), strict=True):
        assert set(entry) == {
            "pair", "strategy", "scheduler", "repeats", "epochs_to_target", "reached_share",
            "regret_at_budget", "p_value", "p_holm", "mean_rank", "winners_curse",
        }  # fmt: skip
        for name in ("epochs_to_target", "regret_at_budget", "winners_curse"):
            for part, suffix in (("median", ""), ("low", "_low"), ("high", "_high")):
                expected = row[name + suffix]
                found = entry[name][part]
                assert found is None if not math.isfinite(expected) else found == pytest.approx(expected)
        assert entry["reached_share"] == pytest.approx(row["reached_share"])
        assert entry["mean_rank"] == pytest.approx(row["mean_rank"])
    baseline = data["pairs"][0]
    assert (baseline["pair"], baseline["p_value"]) == ("random + fifo", None)
    assert all(p["p_value"] is not None for p in data["pairs"][1:])


def test_the_html_report_has_every_figure_and_plotly_once(run) -> None:
    page = render_arena_html(run)
    assert page.startswith("<!doctype html>")
    for anchor in ("summary", "regret-epochs", "regret-time", "epochs-to-target", "ranks"):
        assert f"<section id='{anchor}'>" in page
    assert page.count('class="plotly-graph-div"') == 4
    assert page.count("Plotly.newPlot") == 4
    assert len(re.findall(r"plotly\.js v\d", page)) == 1  # the library, inlined once
    assert page.count("<tr><td>") == 4  # one summary row per pair
    for pair in ("random + fifo", "tpe + asha"):
        assert f"<tr><td>{pair}</td>" in page
