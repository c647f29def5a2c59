"""The arena's JSON summary agrees with ``compare``; its HTML report has every figure."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from nasfcn.arena import (
    JSON_FORMAT,
    ArenaPlan,
    ArenaSearch,
    ArenaTable,
    ReplayResult,
    arena_json,
    compare,
    render_arena_html,
    replays,
    run_arena,
    wilcoxon,
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
            "regret_at_budget", "p_value", "p_holm", "mean_rank", "winners_curse", "per_repeat",
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


def test_the_json_lists_every_repeat_of_every_pair_in_seed_order(run) -> None:
    data = json.loads(json.dumps(arena_json(run), allow_nan=False))
    frame = run.summary.per_repeat
    for entry in data["pairs"]:
        rows = frame[frame["pair"] == entry["pair"]].sort_values("seed")
        repeats = entry["per_repeat"]
        assert [r["seed"] for r in repeats] == [7, 8, 9, 10] == list(rows["seed"])
        for found, row in zip(repeats, rows.to_dict("records"), strict=True):
            assert set(found) == {
                "seed", "epochs", "epochs_to_target", "regret_at_budget", "final_regret", "winners_curse",
                "reached",
            }  # fmt: skip
            assert found["epochs"] == row["epochs"]
            reached = math.isfinite(row["epochs_to_target"])
            assert found["epochs_to_target"] == (row["epochs_to_target"] if reached else None)
            assert found["reached"] is bool(row["reached"]) is reached
            for name in ("regret_at_budget", "final_regret", "winners_curse"):
                assert found[name] == pytest.approx(row[name])


def test_a_paired_test_between_any_two_pairs_can_be_computed_from_the_json(run) -> None:
    data = json.loads(json.dumps(arena_json(run), allow_nan=False))
    by_pair = {p["pair"]: [r["regret_at_budget"] for r in p["per_repeat"]] for p in data["pairs"]}
    frame = run.summary.per_repeat.pivot_table(index="seed", columns="pair", values="regret_at_budget")
    assert wilcoxon(by_pair["tpe + asha"], by_pair["tpe + fifo"]) == pytest.approx(
        wilcoxon(frame["tpe + asha"], frame["tpe + fifo"]), nan_ok=True
    )
    first = data["pairs"][1]
    assert first["p_value"] == pytest.approx(wilcoxon(by_pair[first["pair"]], by_pair["random + fifo"]))


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
    assert "<th>p vs random + fifo (Holm)</th>" in page


def test_the_html_report_names_the_baseline_it_tested_against(run, table: Table) -> None:
    plan = replace(PLAN, baseline=("tpe", "asha"))
    page = render_arena_html(run_arena(ArenaTable(table), plan, "report-baseline"))
    assert "<th>p vs tpe + asha (Holm)</th>" in page
    assert "p: Wilcoxon signed-rank against tpe + asha (the baseline)" in page
    assert "random + fifo (Holm)" not in page
    row = re.search(r"<tr><td>tpe \+ asha</td>.*?</tr>", page)
    assert row is not None
    assert "<td class='num'>baseline</td>" in row.group(0)


def _long_replays(epochs: int) -> list[ReplayResult]:
    """Two pairs x 6 repeats of ``epochs`` epochs each, regret falling in steps."""
    results = []
    for strategy in ("random", "tpe"):
        for seed in range(6):
            steps = np.arange(epochs) // 37
            mean = 0.9 - 0.4 / (1 + steps + seed % 3)
            trace = pd.DataFrame(
                {
                    "time": np.arange(1.0, epochs + 1),
                    "epochs": np.arange(1, epochs + 1),
                    "trial": steps,
                    "incumbent": [f"a{s}" for s in steps],
                    "observed": mean + 0.01,
                    "true_mean": mean,
                    "regret": 0.9 - mean,
                }
            )
            results.append(ReplayResult(ArenaSearch(strategy, "fifo", epochs), seed, pd.DataFrame(), trace))
    return results


#: What 20x more epochs per replay may add to the report: its curves are sampled at 500 points.
GROWTH_BYTES = 50_000


def test_the_html_report_does_not_grow_with_the_epochs_the_replays_trained(run) -> None:
    pages = {}
    for epochs in (300, 6_000):
        summary = compare(_long_replays(epochs), target=0.88, resamples=20)
        pages[epochs] = render_arena_html(replace(run, summary=summary))
    assert len(pages[6_000]) - len(pages[300]) < GROWTH_BYTES
    assert "regret-epochs" in pages[6_000]
