"""What the arena measures: regret curves, epochs to target, equal-epoch regret, tests, the curse."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from nasfcn.arena import (
    ArenaSearch,
    ArenaTable,
    ReplayResult,
    bootstrap_median,
    compare,
    epochs_to_target,
    mean_ranks,
    per_repeat,
    regret_at,
    replays,
    wilcoxon,
)
from nasfcn.confirm import ConfirmPolicy
from nasfcn.table import Table


def _made(
    true_means: list[float], observed: list[float], times: list[float], best: float = 0.9
) -> ReplayResult:
    """A replay with a hand-written trace (one row per epoch)."""
    trace = pd.DataFrame(
        {
            "time": times,
            "epochs": range(1, len(times) + 1),
            "trial": range(len(times)),
            "incumbent": [f"a{m}" for m in true_means],
            "observed": observed,
            "true_mean": true_means,
            "regret": [best - m for m in true_means],
        }
    )
    return ReplayResult(ArenaSearch("random", "fifo", len(times)), 0, pd.DataFrame(), trace)


def test_epochs_to_target_is_the_first_epoch_at_the_target_or_never() -> None:
    result = _made([0.5, 0.7, 0.85, 0.9], [0.55, 0.75, 0.9, 0.95], [1, 2, 3, 4])
    assert epochs_to_target(result, 0.85) == 3
    assert epochs_to_target(result, 0.9) == 4
    assert epochs_to_target(result, 0.95) == math.inf


def test_regret_at_is_the_last_value_by_then() -> None:
    result = _made([0.5, 0.7, 0.9], [0.6, 0.8, 0.95], [10.0, 25.0, 40.0])
    found = regret_at(result, "time", np.asarray([5.0, 10.0, 24.9, 30.0, 99.0]))
    assert np.isnan(found[0])
    assert found[1:] == pytest.approx([0.4, 0.4, 0.2, 0.0])
    assert regret_at(result, "epochs", np.asarray([1, 3, 8])) == pytest.approx([0.4, 0.0, 0.0])


def test_bootstrap_median_brackets_the_median() -> None:
    values = np.arange(101, dtype=float)
    median, low, high = bootstrap_median(values, resamples=500, seed=1)
    assert median[0] == 50.0
    assert 35 < low[0] < 50 < high[0] < 65
    constant = bootstrap_median(np.full((7, 2), 3.0))
    assert [list(part) for part in constant] == [[3.0, 3.0]] * 3


def test_wilcoxon_sees_a_consistent_difference_and_not_a_tie() -> None:
    better = np.linspace(0.0, 0.1, 20)
    assert wilcoxon(better, better + 0.05) < 0.01
    assert wilcoxon(better, better) == 1.0
    assert math.isnan(wilcoxon([], []))


def test_compare_measures_every_pair_against_random_fifo(table: Table) -> None:
    board = ArenaTable(table)
    searches = [ArenaSearch(s, k, trials=10) for s in ("random", "tpe") for k in ("fifo", "asha")]
    results = replays(board, searches, repeats=6, seed=0)
    target = board.target(0.01)
    summary = compare(results, target, resamples=200)
    assert target == pytest.approx(board.best_mean)  # 1% of 8 architectures: the best one
    assert summary.budget == min(int(r.trace["epochs"].iloc[-1]) for r in results)
    rows = summary.summary.set_index("pair")
    assert list(rows.index) == ["random + fifo", "random + asha", "tpe + fifo", "tpe + asha"]
    assert math.isnan(rows.loc["random + fifo", "p_value"])
    assert rows["p_holm"].drop("random + fifo").between(0, 1).all()
    assert (rows["repeats"] == 6).all()
    repeats = summary.per_repeat
    for pair, group in repeats.groupby("pair"):
        reached = group["epochs_to_target"] < math.inf
        assert rows.loc[pair, "reached_share"] == pytest.approx(reached.mean())
        # the exported run is one of the best architecture's runs: off its mean by seed and epoch only
        assert group["winners_curse"].abs().max() <= 0.006 * 2 + 0.004 * 3 + 1e-9
    assert rows["mean_rank"].sum() == pytest.approx(1 + 2 + 3 + 4)
    epoch_curves = summary.epoch_curves
    assert set(epoch_curves["pair"]) == set(rows.index)
    assert (epoch_curves["low"] <= epoch_curves["median"]).all()
    assert (epoch_curves["median"] <= epoch_curves["high"]).all()
    for _, curve in epoch_curves.groupby("pair"):
        assert curve["median"].is_monotonic_decreasing
    assert not summary.time_curves["median"].isna().any()
    ranks = summary.ranks.groupby("epochs")["mean_rank"]
    assert ranks.count().eq(4).all()
    assert ranks.sum().to_numpy() == pytest.approx(10.0)  # 1 + 2 + 3 + 4 at every budget


def test_mean_ranks_rank_the_pairs_by_regret_at_each_budget() -> None:
    low = _made([0.9, 0.9], [0.95, 0.95], [1.0, 2.0])  # regret 0 from the first epoch
    high = _made([0.5, 0.9], [0.6, 0.95], [1.0, 2.0])  # regret 0.4, then 0
    high = ReplayResult(ArenaSearch("tpe", "asha", 2), 0, high.trials, high.trace)
    ranks = mean_ranks([low, high], [1, 2]).set_index(["epochs", "pair"])["mean_rank"]
    assert ranks[(1, "random + fifo")] == 1.0
    assert ranks[(1, "tpe + asha")] == 2.0
    assert ranks[(2, "random + fifo")] == ranks[(2, "tpe + asha")] == 1.5  # tied


def test_the_winners_curse_is_best_observed_minus_true_mean() -> None:
    lucky = _made([0.7, 0.8], [0.75, 0.95], [1.0, 2.0])
    summary = compare([lucky], target=0.85, resamples=50)
    assert summary.per_repeat["winners_curse"].iloc[0] == pytest.approx(0.15)
    assert summary.per_repeat["epochs_to_target"].iloc[0] == math.inf
    assert not summary.per_repeat["reached"].iloc[0]


#: A regret curve's points per pair, however long the replays (``_measure.CURVE_POINTS``).
CURVE_BOUND = 500


def _long(seed: int, strategy: str, epochs: int) -> ReplayResult:
    """A replay of ``epochs`` epochs whose regret falls in steps (a new incumbent every 37 epochs)."""
    steps = np.arange(epochs) // 37
    true_means = 0.9 - 0.4 / (1 + steps + seed % 3)
    made = _made(list(true_means), list(true_means + 0.01), list(np.arange(1.0, epochs + 1)))
    return ReplayResult(ArenaSearch(strategy, "fifo", epochs), seed, made.trials, made.trace)


def test_regret_curves_of_long_replays_have_a_bounded_number_of_exact_points() -> None:
    results = [_long(seed, strategy, 6_000) for strategy in ("random", "tpe") for seed in range(8)]
    summary = compare(results, target=0.88, resamples=50)
    for pair, curve in summary.epoch_curves.groupby("pair"):
        assert len(curve) <= CURVE_BOUND, pair
        assert (curve["epochs"].iloc[0], curve["epochs"].iloc[-1]) == (1, 6_000)  # the whole run
        group = [r for r in results if r.search.pair == pair]
        exact = np.median([regret_at(r, "epochs", curve["epochs"].to_numpy()) for r in group], axis=0)
        assert curve["median"].to_numpy() == pytest.approx(exact)  # sampled, never smoothed
    assert summary.time_curves.groupby("pair").size().max() <= CURVE_BOUND
    short = compare([_long(seed, "random", 300) for seed in range(4)], target=0.88, resamples=50)
    assert list(short.epoch_curves["epochs"]) == list(range(1, 301))  # short runs: every epoch


def test_a_confirming_replay_is_measured_on_its_confirmed_pick(lucky_table: Table) -> None:
    """The lucky network's 0.90 fools the best single run; confirmation exports the steady 0.70."""
    search = ArenaSearch("random", "fifo", 12, concurrency=2, confirm=ConfirmPolicy(2, 1))
    (confirmed,) = replays(lucky_table, [search], repeats=1, seed=7)
    row = per_repeat([confirmed], target=0.69, budget=1).iloc[0]
    assert row["confirm_epochs"] == 2 * 1 * lucky_table.epochs
    assert row["epochs"] == confirmed.trials["epochs"].sum()  # search and confirmation epochs
    assert row["final_regret"] == pytest.approx(0.0)
    assert row["winners_curse"] == pytest.approx(0.0)  # pooled mean 0.70 of a network whose mean is 0.70
    assert row["reached"]
    plain = per_repeat(replays(lucky_table, [replace(search, confirm=None)], 1, seed=7), 0.69, 1).iloc[0]
    assert (plain["confirm_epochs"], plain["winners_curse"]) == (0, pytest.approx(0.4))
    assert plain["final_regret"] == pytest.approx(0.2)
