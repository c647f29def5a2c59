"""The budget keeper and its Ray Tune wrappers on a fake clock: nothing waits, nothing trains."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from ray.tune.schedulers import TrialScheduler
from ray.tune.search import Searcher

from nasfcn.recipe import Fidelity
from nasfcn.search import SearchConfig
from nasfcn.search._budget import Plan
from nasfcn.search._budgeting import planned_config
from nasfcn.search._deadline import (
    DONE,
    START,
    WAIT,
    BudgetKeeper,
    BudgetScheduler,
    BudgetSearch,
    DeadlineScheduler,
    overrun_allowance_s,
)
from nasfcn.search._scheduler import make_scheduler


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeTrial:
    trial_id: str
    config: dict[str, Any] = field(default_factory=dict)


@dataclass
class FakeSearcher:
    """Stands in for the strategy's searcher: numbered configs, and what it was told."""

    metric: str = "val_miou"
    mode: str = "max"
    told: list[str] = field(default_factory=list)
    number: int = 0

    def suggest(self, trial_id: str) -> dict[str, Any]:
        self.number += 1
        return {"number": self.number, "recipe_overrides": {"seed": 3}}

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self.told.append(trial_id)


def _keeper(
    clock: Clock, seconds: float = 300.0, **options: Any
) -> tuple[BudgetKeeper, list[tuple[Plan, str]]]:
    plans: list[tuple[Plan, str]] = []
    keeper = BudgetKeeper(
        seconds, 2, 16, clock=clock, on_plan=lambda plan, why: plans.append((plan, why)), **options
    )
    return keeper, plans


def _scheduler(keeper: BudgetKeeper) -> BudgetScheduler:
    config = SearchConfig(space="unused.yaml")
    return BudgetScheduler(lambda plan, seen: make_scheduler(planned_config(config, plan), seen), keeper)


def _epoch(epoch: int, seconds: float, miou: float = 0.5) -> dict[str, Any]:
    return {
        "nasfcn_status": "running",
        "epoch": epoch,
        "training_iteration": epoch,
        "seconds": seconds,
        "val_miou": miou,
    }


def test_the_first_trials_measure_then_the_plan_holds_the_rest() -> None:
    clock = Clock()
    keeper, plans = _keeper(clock)
    scheduler = _scheduler(keeper)
    search = BudgetSearch(FakeSearcher(), keeper)
    first, second = search.suggest("a"), search.suggest("b")
    for trial_id in ("a", "b"):
        scheduler.on_trial_add(None, FakeTrial(trial_id))
    assert "epochs" not in first["recipe_overrides"]  # before a plan: the cap's recipe
    assert keeper.may_start() == WAIT  # both workers measure; no third trial before a plan
    assert search.suggest("c") is None
    clock.now += 5.0
    assert scheduler.on_trial_result(None, FakeTrial("a"), _epoch(1, 4.0)) == TrialScheduler.CONTINUE
    assert len(plans) == 1
    assert plans[0][1] == "measured the first epoch"
    plan = keeper.plan
    assert plan is not None
    assert plan.epoch_s == 4.0
    assert plan.overhead_s == 1.0
    assert scheduler.inner is not None
    assert scheduler.inner._max_t == plan.max_epochs
    third = search.suggest("c")
    assert third["recipe_overrides"] == {"seed": 3, "epochs": plan.max_epochs}
    assert second["number"] == 2
    assert third["number"] == 3


def _reduced(epoch: int, seconds: float, budget: float) -> dict[str, Any]:
    return {**_epoch(epoch, seconds), "budget": budget, "reduced_fidelity": True}


def test_with_fidelity_the_first_plan_follows_the_first_full_size_epoch() -> None:
    clock = Clock()
    keeper, plans = _keeper(clock, seconds=600.0, fidelity=Fidelity(resolution=0.5, subset=0.25))
    config = SearchConfig(space="unused.yaml", fidelity="resolution=0.5,subset=0.25")
    scheduler = BudgetScheduler(lambda plan, seen: make_scheduler(planned_config(config, plan), seen), keeper)
    search = BudgetSearch(FakeSearcher(), keeper)
    search.suggest("a")
    scheduler.on_trial_add(None, FakeTrial("a"))
    for epoch in range(1, 5):  # the cap's grace period (16 // 4): four cheap epochs, no plan yet
        clock.now += 0.5
        scheduler.on_trial_result(None, FakeTrial("a"), _reduced(epoch, 0.4, epoch / 16))
        assert keeper.plan is None
    clock.now += 4.0
    scheduler.on_trial_result(None, FakeTrial("a"), {**_epoch(5, 4.0), "budget": 1.25})
    plan = keeper.plan
    assert plan is not None
    assert [why for _, why in plans] == ["measured the first full-size epoch"]
    assert (plan.epoch_s, plan.low_epoch_s, plan.overhead_s) == pytest.approx((4.0, 0.4, 0.1))
    assert plan.low_epochs == plan.grace_period
    assert plan.trial_s() == pytest.approx(
        0.1 + plan.grace_period * 0.4 + (plan.expected_epochs - plan.grace_period) * 4.0
    )
    assert scheduler.inner._time_attr == "budget"  # ASHA counts full-epoch equivalents
    assert scheduler.inner._max_t == plan.grace_period / 16 + plan.max_epochs - plan.grace_period
    later = search.suggest("b")
    assert later["low_epochs"] == plan.grace_period  # the plan's grace period is the reduced part
    assert later["recipe_overrides"]["epochs"] == plan.max_epochs


def test_a_replan_follows_when_the_measured_cost_doubles() -> None:
    clock = Clock()
    keeper, plans = _keeper(clock, seconds=600.0)
    scheduler = _scheduler(keeper)
    scheduler.on_trial_add(None, FakeTrial("a"))
    clock.now += 2.0
    scheduler.on_trial_result(None, FakeTrial("a"), _epoch(1, 2.0))
    first = keeper.plan
    assert first is not None
    for epoch in range(2, 5):  # every later epoch takes twice as long: the median doubles
        scheduler.on_trial_add(None, FakeTrial(f"t{epoch}"))
        scheduler.on_trial_result(None, FakeTrial(f"t{epoch}"), _epoch(1, 4.0))
        scheduler.on_trial_complete(None, FakeTrial(f"t{epoch}"), _epoch(1, 4.0))
    again = keeper.plan
    assert again is not None
    assert again.epoch_s == 4.0
    assert (again.max_epochs, again.rungs) == (first.max_epochs, first.rungs)  # one recipe per search
    assert again.trials < 0.7 * first.trials
    assert [why for _, why in plans][-1] == "a trial finished"


def test_no_new_trial_once_its_grace_period_cannot_end_in_time() -> None:
    clock = Clock()
    keeper, _ = _keeper(clock, seconds=100.0)
    scheduler = _scheduler(keeper)
    search = BudgetSearch(FakeSearcher(), keeper)
    scheduler.on_trial_add(None, FakeTrial("a"))
    clock.now += 3.0
    scheduler.on_trial_result(None, FakeTrial("a"), _epoch(1, 3.0))
    plan = keeper.plan
    assert plan is not None
    assert keeper.may_start() == START
    clock.now = keeper.deadline - plan.grace_period * 3.0 + 0.5  # a grace period would overrun
    assert keeper.may_start() == DONE
    assert search.suggest("late") == Searcher.FINISHED


def test_running_trials_stop_at_the_deadline_after_the_last_epoch_that_fits() -> None:
    clock = Clock()
    keeper, _ = _keeper(clock, seconds=60.0)
    scheduler = _scheduler(keeper)
    trial = FakeTrial("a")
    assert keeper.deadline == keeper.began + 60.0 - 5.0  # seconds kept back for Ray to stop trials
    scheduler.on_trial_add(None, trial)
    clock.now += 10.0
    assert scheduler.on_trial_result(None, trial, _epoch(1, 10.0)) == TrialScheduler.CONTINUE
    clock.now = keeper.deadline - 10.5  # the next epoch ends in time
    assert scheduler.on_trial_result(None, trial, _epoch(2, 10.0)) == TrialScheduler.CONTINUE
    clock.now = keeper.deadline - 9.5  # the next 10 s epoch would end past the deadline
    assert scheduler.on_trial_result(None, trial, _epoch(3, 10.0)) == TrialScheduler.STOP


def test_the_plan_starts_trials_up_to_its_count_then_waits_then_finishes() -> None:
    clock = Clock()
    keeper, _ = _keeper(clock, seconds=60.0, trials_cap=3)
    scheduler = _scheduler(keeper)
    search = BudgetSearch(FakeSearcher(), keeper)
    trials = [FakeTrial(t) for t in "abc"]
    for trial in trials[:2]:
        search.suggest(trial.trial_id)
        scheduler.on_trial_add(None, trial)
    clock.now += 1.0
    scheduler.on_trial_result(None, trials[0], _epoch(1, 1.0))
    assert keeper.plan is not None
    assert keeper.plan.trials == 3
    assert search.suggest("c") is not None
    scheduler.on_trial_add(None, trials[2])
    assert search.suggest("d") is None  # the plan is full, trials still run: wait
    for trial in trials:
        scheduler.on_trial_complete(None, trial, _epoch(1, 1.0))
    assert search.suggest("d") == Searcher.FINISHED


def test_the_budget_line_shows_the_plan_and_the_time_left() -> None:
    clock = Clock()
    keeper, _ = _keeper(clock, seconds=300.0)
    assert keeper.line() == "budget 5:00: used 0:00, left 5:00; measuring the first epochs (0 trials started)"
    scheduler = _scheduler(keeper)
    scheduler.on_trial_add(None, FakeTrial("a"))
    clock.now += 3.0
    scheduler.on_trial_result(None, FakeTrial("a"), _epoch(1, 2.0))
    clock.now = keeper.began + 60.0
    assert keeper.line().startswith("budget 5:00: used 1:00, left 4:00; plan ")
    assert "x up to 16 epochs, rungs 4,8,16 (eta 2), 2.0 s/epoch" in keeper.line()


@pytest.mark.parametrize("scheduler_name", ["asha", "fifo"])
def test_the_scheduler_is_built_from_the_plan_with_earlier_epochs_replayed(scheduler_name: str) -> None:
    clock = Clock()
    keeper, _ = _keeper(clock, asha=scheduler_name == "asha")
    config = SearchConfig(space="unused.yaml", scheduler=scheduler_name)
    built: list[tuple[Plan, list[list[float]]]] = []

    def build(plan: Plan, seen: Any) -> Any:
        built.append((plan, [list(h) for h in seen]))
        return make_scheduler(planned_config(config, plan), seen)

    scheduler = BudgetScheduler(build, keeper, histories=[[0.1, 0.2]])
    scheduler.on_trial_add(None, FakeTrial("a"))
    clock.now += 1.0
    scheduler.on_trial_result(None, FakeTrial("a"), _epoch(1, 1.0))
    assert len(built) == 1
    assert built[0][1] == [[0.1, 0.2]]
    assert built[0][0].rungs == (() if scheduler_name == "fifo" else (4, 8, 16))


def test_a_budget_may_be_overrun_by_30_s_or_a_tenth_of_a_longer_one() -> None:
    assert overrun_allowance_s(30) == 30.0
    assert overrun_allowance_s(300) == 30.0
    assert overrun_allowance_s(3600) == 360.0


def test_the_plan_keeps_time_for_the_confirmation_runs_after_the_search_proper() -> None:
    clock = Clock()
    keeper, plans = _keeper(clock, seconds=1800.0, confirm_runs=6)
    without, _ = _keeper(Clock(), seconds=1800.0)
    for each in (keeper, without):
        each.trial_started("t1")
        each.clock.now += 10.0  # type: ignore[attr-defined]
        each.epoch_done("t1", 1, 10.0)
    plan = keeper.plan
    assert plan is not None
    kept = 3 * (0.0 + plan.max_epochs * 10.0)  # 6 runs on 2 workers: 3 rounds of full trials
    assert keeper.reserved_s() == pytest.approx(kept)
    assert keeper.seconds_left() == pytest.approx(without.seconds_left() - kept)
    assert plan.trials < without.plan.trials  # fewer candidates: the confirmation fits the budget
    assert f"then 6 confirmation runs ({kept // 60:.0f}:{kept % 60:02.0f} kept)" in keeper.line()
    assert plans[0][0] == plan


def test_confirmation_over_a_third_of_the_budget_is_not_planned() -> None:
    keeper, _ = _keeper(Clock(), seconds=120.0, confirm_runs=20)
    keeper.trial_started("t1")
    keeper.clock.now += 5.0  # type: ignore[attr-defined]
    keeper.epoch_done("t1", 1, 5.0)
    assert keeper.reserved_s() == 0.0
    assert "no time for 20 confirmation runs (over 33% of the budget)" in keeper.line()


def test_the_plan_keeps_the_final_share_for_the_final_runs() -> None:
    keeper, _ = _keeper(Clock(), seconds=300.0, final_s=150.0)
    without, _ = _keeper(Clock(), seconds=300.0)
    assert keeper.deadline == pytest.approx(without.deadline - 150.0)
    assert keeper.phases_end == pytest.approx(without.deadline)  # the final runs may train to the end
    for each in (keeper, without):
        each.trial_started("t1")
        each.clock.now += 5.0  # type: ignore[attr-defined]
        each.epoch_done("t1", 1, 5.0)
    assert keeper.plan is not None
    assert without.plan is not None
    assert keeper.plan.seconds_left == pytest.approx(without.plan.seconds_left - 150.0)
    assert keeper.plan.trials < without.plan.trials
    assert "then final runs (2:30 kept)" in keeper.line()


def test_the_final_runs_stop_after_the_last_epoch_that_ends_before_the_deadline() -> None:
    clock = Clock()
    scheduler = DeadlineScheduler(deadline=clock.now + 30.0, clock=clock)
    trial = FakeTrial("final")
    clock.now += 19.0  # 11 s left: a 10 s epoch fits
    assert scheduler.on_trial_result(None, trial, _epoch(2, 10.0)) == TrialScheduler.CONTINUE
    clock.now += 10.0  # 1 s left
    assert scheduler.on_trial_result(None, trial, _epoch(3, 10.0)) == TrialScheduler.STOP
    assert scheduler.on_trial_result(None, trial, {"nasfcn_status": "completed"}) == TrialScheduler.CONTINUE
