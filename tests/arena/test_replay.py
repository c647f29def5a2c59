"""The replay engine drives the search's own searchers and schedulers against a known table."""

from __future__ import annotations

import numpy as np
import optuna
import pandas as pd
import pytest

from nasfcn.arena import ArenaError, ArenaSearch, ArenaTable, replay, replays
from nasfcn.catalogue import STRATEGIES, Strategy
from nasfcn.confirm import ConfirmPolicy
from nasfcn.search import SEARCHERS, optuna_strategy, unregister_strategy
from nasfcn.space import parse_space
from nasfcn.table import Table, load


def _objectives(strategy: str) -> tuple[str, ...]:
    return ("miou", "params") if STRATEGIES.get(strategy).multi_objective else ("miou",)


@pytest.mark.parametrize("scheduler", ["fifo", "asha"])
@pytest.mark.parametrize("strategy", SEARCHERS.names())
def test_every_strategy_reaches_zero_regret_and_never_goes_up(
    table: Table, best_arch: str, strategy: str, scheduler: str
) -> None:
    search = ArenaSearch(strategy, scheduler, trials=40, concurrency=2, objectives=_objectives(strategy))
    result = replay(table, search, seed=3)
    regret = result.trace["regret"].to_numpy()
    assert np.all(np.diff(regret) <= 0)
    assert regret[-1] == pytest.approx(0.0)
    assert result.trace["incumbent"].iloc[-1] == best_arch
    assert list(result.trace["epochs"]) == list(range(1, len(result.trace) + 1))
    assert result.trace["epochs"].iloc[-1] == result.trials["epochs"].sum()


def test_replays_are_reproducible_from_the_seed(table: Table) -> None:
    search = ArenaSearch("tpe", "asha", trials=16, concurrency=3)
    first, again, other = replay(table, search, 5), replay(table, search, 5), replay(table, search, 6)
    pd.testing.assert_frame_equal(first.trials, again.trials)
    pd.testing.assert_frame_equal(first.trace, again.trace)
    assert not first.trials[["arch_id", "table_seed"]].equals(other.trials[["arch_id", "table_seed"]])


def test_repeats_pair_up_across_strategies(table: Table) -> None:
    searches = [ArenaSearch("random", "fifo", 6), ArenaSearch("random", "asha", 6)]
    results = replays(table, searches, repeats=2, seed=10)
    assert [(r.search.scheduler, r.seed) for r in results] == [
        ("fifo", 10),
        ("fifo", 11),
        ("asha", 10),
        ("asha", 11),
    ]
    # the same seed draws the same architectures and table seeds for the same trial numbers
    pd.testing.assert_frame_equal(
        results[0].trials[["arch_id", "table_seed"]], results[2].trials[["arch_id", "table_seed"]]
    )


class _CountingSampler(optuna.samplers.RandomSampler):
    """A sampler the test can see being asked."""

    asked = 0

    def sample_independent(self, *args: object, **kwargs: object) -> object:
        type(self).asked += 1
        return super().sample_independent(*args, **kwargs)


def test_a_strategy_registered_in_a_test_shows_up_in_the_arena(table: Table) -> None:
    @optuna_strategy(Strategy("arena-counting", "a random sampler that counts its draws"))
    def _counting(seed: int, objectives: int) -> optuna.samplers.BaseSampler:
        return _CountingSampler(seed=seed)

    try:
        result = replay(table, ArenaSearch("arena-counting", "asha", trials=5), seed=0)
    finally:
        unregister_strategy("arena-counting")
    assert len(result.trials) == 5
    assert _CountingSampler.asked >= 5  # one draw per knob of each of the 5 trials


def test_asha_stops_trials_early_in_the_replay(table: Table) -> None:
    fifo = replay(table, ArenaSearch("random", "fifo", trials=16), seed=1)
    asha = replay(table, ArenaSearch("random", "asha", trials=16), seed=1)
    assert list(asha.trials["arch_id"]) == list(fifo.trials["arch_id"])  # the same trials
    assert fifo.trials["epochs"].sum() == 16 * table.epochs
    assert asha.trials["epochs"].sum() < fifo.trials["epochs"].sum()
    assert "stopped" in set(asha.trials["status"])
    assert set(fifo.trials["status"]) == {"completed"}


@pytest.mark.parametrize("concurrency", [1, 3])
def test_the_simulated_clock_runs_concurrency_workers(table: Table, concurrency: int) -> None:
    result = replay(table, ArenaSearch("random", "fifo", trials=9, concurrency=concurrency), seed=2)
    trials = result.trials
    seconds = sum(table.seconds(a, s) for a, s in zip(trials["arch_id"], trials["table_seed"], strict=True))
    starts, ends = trials["started"].to_numpy(), trials["ended"].to_numpy()
    running = [int(((starts <= t) & (ends > t)).sum()) for t in starts]
    assert max(running) == concurrency
    if concurrency == 1:
        assert result.trace["time"].iloc[-1] == pytest.approx(seconds)
    else:
        assert result.trace["time"].iloc[-1] < seconds
    assert result.trace["time"].is_monotonic_increasing


def test_a_run_that_failed_in_the_table_fails_the_trial(table_files: dict, failed_run: tuple) -> None:
    result = replay(load(table_files["arena8f"]), ArenaSearch("random", "fifo", trials=40), seed=2)
    trials = result.trials
    hit = (trials["arch_id"] == failed_run[0]) & (trials["table_seed"] == failed_run[1])
    assert hit.any()
    assert set(trials.loc[hit, "status"]) == {"failed"}
    assert set(trials.loc[hit, "epochs"]) == {1}  # the epoch it reported before it failed
    assert "failed" not in set(trials.loc[~hit, "status"])
    assert len(trials) == 40  # the search went on
    assert result.trace["epochs"].iloc[-1] == trials["epochs"].sum()


def test_a_multi_objective_strategy_with_a_single_metric_is_refused(table: Table) -> None:
    with pytest.raises(
        ArenaError, match=r"cannot replay nsga2 \+ fifo on .*: --strategy nsga2 is multi-objective"
    ):
        replay(table, ArenaSearch("nsga2", "fifo", trials=4), seed=0)


def test_an_objective_a_table_lacks_is_refused(table: Table) -> None:
    with pytest.raises(ArenaError, match="unknown objective 'miou_gain'"):
        replay(table, ArenaSearch("tpe", "fifo", trials=4, objectives=("miou_gain",)), seed=0)


def test_a_table_of_another_space_is_refused(table: Table) -> None:
    other = parse_space(
        "name: other\ninput: {channels: 3, min_size: 32}\n"
        "encoder: {stages: 3, width: 8, max_width: 32, kernel_size: 3, downsample: maxpool}\n"
        "skip: {choices: [none, fcn16s]}\n"
    )
    with pytest.raises(ArenaError, match=r"built from space 'arena8' .* not from 'other'"):
        ArenaTable(table, space=other)


def test_an_architecture_the_table_lacks_is_named(table_files: dict, best_arch: str) -> None:
    lacking = load(table_files["arena7"])  # the space's eight architectures but the best
    assert best_arch not in lacking.archs()
    with pytest.raises(
        ArenaError, match=rf"grid proposed architecture {best_arch} \(\{{.*\}}\), which the table"
    ):
        replay(lacking, ArenaSearch("grid", "fifo", trials=8), seed=0)


# -- confirmation at the end of a replayed search (nasfcn.confirm's policy) ---------------------------
LUCKY_SEED = 7  # a replay of 12 random trials that draws the lucky network's high run (seed 0)


def _confirming(top: int, seeds: int, trials: int = 12) -> ArenaSearch:
    return ArenaSearch("random", "fifo", trials, concurrency=2, confirm=ConfirmPolicy(top, seeds))


@pytest.mark.parametrize("seeds", [1, 2])
def test_confirmation_exports_the_steady_network_a_lucky_run_hid(
    lucky_table: Table, lucky_archs: tuple[str, str], seeds: int
) -> None:
    lucky, steady = lucky_archs
    plain = replay(lucky_table, ArenaSearch("random", "fifo", 12, concurrency=2), LUCKY_SEED)
    confirmed = replay(lucky_table, _confirming(2, seeds), LUCKY_SEED)
    assert plain.trace["incumbent"].iloc[-1] == lucky  # the best single run is the lucky one's 0.90
    assert plain.final_regret == pytest.approx(0.2)
    done = confirmed.confirmation
    assert done is not None
    assert (done.unconfirmed.arch_id, done.unconfirmed.observed) == (lucky, pytest.approx(0.9))
    assert done.unconfirmed.regret == pytest.approx(0.2)
    assert done.unconfirmed.winners_curse == pytest.approx(0.4)
    assert done.confirmed.arch_id == steady
    assert done.confirmed.observed == pytest.approx(0.7)  # its pooled mean: every run 0.70
    assert done.confirmed.regret == pytest.approx(0.0)
    assert confirmed.final_regret == pytest.approx(0.0)
    assert confirmed.trace["incumbent"].iloc[-1] == steady
    # confirming changes nothing of the search proper: the same trials, then the confirmation runs
    search = confirmed.trials[confirmed.trials["confirms"].isna()].reset_index(drop=True)
    pd.testing.assert_frame_equal(search, plain.trials)


@pytest.mark.parametrize(("top", "seeds"), [(2, 1), (3, 2)])
def test_confirmation_costs_top_x_seeds_full_runs_on_other_table_seeds(
    lucky_table: Table, top: int, seeds: int
) -> None:
    result = replay(lucky_table, _confirming(top, seeds), LUCKY_SEED)
    done = result.confirmation
    assert done is not None
    trials = result.trials
    runs, search = trials[trials["confirms"].notna()], trials[trials["confirms"].isna()]
    assert done.epochs == top * seeds * lucky_table.epochs
    assert len(runs) == top * seeds
    assert set(runs["epochs"]) == {lucky_table.epochs}  # the full schedule, nothing stopped them
    assert set(runs["confirms"]) == set(done.targets)
    assert result.trace["epochs"].iloc[-1] == search["epochs"].sum() + done.epochs
    by_number = search.set_index("number")
    for target, group in runs.groupby("confirms"):
        drawn = by_number.loc[int(target), "table_seed"]
        assert drawn not in set(group["table_seed"])  # other seeds than the trial drew
        assert group["table_seed"].nunique() == seeds
        assert set(group["arch_id"]) == {by_number.loc[int(target), "arch_id"]}
    # on the same clock: they start when the search proper ends, two workers at a time
    assert runs["started"].min() == pytest.approx(search["ended"].max())
    assert done.seconds == pytest.approx(runs["ended"].max() - search["ended"].max())


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (ConfirmPolicy(2, 3), r"--confirm-seeds 3: .* the table has 3 seeds, so at most 2"),
        (ConfirmPolicy(0, 1), "--confirm-top must be >= 1, got 0"),
    ],
)
def test_a_confirmation_the_table_cannot_replay_is_refused(
    lucky_table: Table, policy: ConfirmPolicy, message: str
) -> None:
    search = ArenaSearch("random", "fifo", 6, confirm=policy)
    with pytest.raises(ArenaError, match=rf"cannot replay random \+ fifo on .*{message}"):
        replay(lucky_table, search, seed=0)


def test_a_confirming_replay_is_reproducible_from_the_seed(lucky_table: Table) -> None:
    search = ArenaSearch("tpe", "asha", 12, concurrency=3, confirm=ConfirmPolicy(3, 2))
    first, again, other = (replay(lucky_table, search, s) for s in (5, 5, 6))
    pd.testing.assert_frame_equal(first.trials, again.trials)
    pd.testing.assert_frame_equal(first.trace, again.trace)
    assert first.confirmation == again.confirmation
    assert not first.trials[["arch_id", "table_seed"]].equals(other.trials[["arch_id", "table_seed"]])
