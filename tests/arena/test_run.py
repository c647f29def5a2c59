"""A plan is checked before the first replay: names from the registries, targets, objectives."""

from __future__ import annotations

import math

import optuna
import pytest

from nasfcn.arena import (
    ArenaError,
    ArenaPlan,
    ArenaTable,
    ReplayResult,
    check_plan,
    parse_pair,
    run_arena,
    summary_cells,
    target_of,
)
from nasfcn.catalogue import Strategy
from nasfcn.search import SEARCHERS, optuna_strategy, unregister_strategy
from nasfcn.table import Table


def _plan(**changes: object) -> ArenaPlan:
    settings: dict = {"strategies": ("random",), "schedulers": ("fifo",), "trials": 6, "repeats": 2}
    return ArenaPlan(**{**settings, **changes})


def test_an_unknown_strategy_lists_the_registered_ones_even_one_a_test_added(table: Table) -> None:
    @optuna_strategy(Strategy("arena-plan-test", "random, registered by a test"))
    def _sampler(seed: int, objectives: int) -> optuna.samplers.BaseSampler:
        return optuna.samplers.RandomSampler(seed=seed)

    try:
        with pytest.raises(ArenaError) as caught:
            check_plan(ArenaTable(table), _plan(strategies=("random", "tpee")))
        run = run_arena(ArenaTable(table), _plan(strategies=("arena-plan-test",)), "t")
    finally:
        unregister_strategy("arena-plan-test")
    message = str(caught.value)
    assert message.startswith("--strategies: unknown strategy 'tpee' (did you mean 'tpe'?); registered: ")
    assert set(message.split("registered: ")[1].split(", ")) == {*SEARCHERS.names(), "arena-plan-test"}
    assert list(run.summary.summary["pair"]) == ["arena-plan-test + fifo"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"schedulers": ("fifo", "hyperband")},
            r"--schedulers: unknown scheduler 'hyperband'; registered: asha, fifo",
        ),
        ({"strategies": ()}, r"--strategies names no strategy; registered: "),
        ({"schedulers": ("asha", "asha")}, r"--schedulers names a scheduler twice: asha, asha"),
        ({"repeats": 0}, r"--repeats must be >= 1, got 0"),
        (
            {"strategies": ("random", "nsga2")},
            r"cannot replay nsga2 \+ fifo on .*: --strategy nsga2 is multi-objective",
        ),
        (
            {"schedulers": ("fifo", "asha"), "baseline": ("tpe", "asha")},
            r"^--baseline 'tpe \+ asha' is not one of the arena's pairs; it has random \+ fifo, "
            r"random \+ asha$",
        ),
    ],
)
def test_a_plan_that_does_not_fit_is_refused_up_front(table: Table, changes: dict, message: str) -> None:
    with pytest.raises(ArenaError, match=message):
        check_plan(ArenaTable(table), _plan(**changes))


def test_a_baseline_outside_the_plan_is_refused_before_any_replay(table: Table) -> None:
    replayed: list[ReplayResult] = []
    plan = _plan(strategies=("tpe",), baseline=("random", "asha"))
    with pytest.raises(ArenaError, match=r"^--baseline 'random \+ asha' is not one of the arena's pairs"):
        run_arena(ArenaTable(table), plan, "t", progress=replayed.append)
    assert replayed == []


def test_any_pair_can_be_the_baseline_without_random_in_the_arena(table: Table) -> None:
    plan = _plan(strategies=("tpe",), schedulers=("fifo", "asha"), repeats=6, baseline=("tpe", "asha"))
    run = run_arena(ArenaTable(table), plan, "t")
    assert run.summary.baseline == ("tpe", "asha")
    assert plan.settings()["baseline"] == "tpe + asha"
    rows = {row["pair"]: row for row in run.summary.summary.to_dict("records")}
    assert math.isnan(rows["tpe + asha"]["p_value"])  # the baseline's own row
    assert 0 <= rows["tpe + fifo"]["p_value"] <= 1  # tested against tpe + asha, paired by seed
    assert summary_cells(rows["tpe + asha"], run.summary.baseline)[4] == "baseline"
    assert summary_cells(rows["tpe + fifo"], run.summary.baseline)[4] != "baseline"


def test_the_default_baseline_may_be_absent_and_then_nothing_is_tested(table: Table) -> None:
    run = run_arena(ArenaTable(table), _plan(strategies=("tpe",), schedulers=("asha",)), "t")
    assert run.summary.baseline == ("random", "fifo")
    assert run.summary.summary["p_value"].isna().all()


@pytest.mark.parametrize("text", ["tpe+asha", "tpe + asha", " tpe +asha "])
def test_a_baseline_is_written_strategy_plus_scheduler(text: str) -> None:
    assert parse_pair(text) == ("tpe", "asha")


@pytest.mark.parametrize("text", ["tpe", "tpe+", "+asha", "tpe+asha+fifo", ""])
def test_a_baseline_that_is_not_one_pair_is_refused(text: str) -> None:
    with pytest.raises(ArenaError) as caught:
        parse_pair(text)
    assert str(caught.value) == f"--baseline {text!r}: give one STRATEGY+SCHEDULER pair, e.g. random+fifo"


def test_the_target_is_a_top_share_or_a_val_miou(table: Table) -> None:
    board = ArenaTable(table)
    top = target_of(board, "1%")
    assert (top.value, top.reaching, top.architectures) == (pytest.approx(board.best_mean), 1, 8)
    assert target_of(board, "25%").reaching == 2
    assert target_of(board, "0.5").value == 0.5
    assert "top 1% of 8 architectures: 1 at or above it" in top.describe()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("top", r"--target 'top': give a share of architectures \(e.g. 1%\) or a val mIoU in \(0, 1\]"),
        ("150%", r"--target '150%': a share of architectures must be in \(0%, 100%\]"),
        ("0.99", r"--target '0.99': no architecture of .* has a mean val mIoU of 0.9900 or more \(the best"),
    ],
)
def test_a_target_that_cannot_be_met_is_refused(table: Table, spec: str, message: str) -> None:
    with pytest.raises(ArenaError, match=message):
        target_of(ArenaTable(table), spec)
