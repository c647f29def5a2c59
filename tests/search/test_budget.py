"""The time-budget planner's arithmetic: pure functions, no clock, no Ray."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from nasfcn.recipe import Fidelity
from nasfcn.search._budget import (
    Cost,
    Plan,
    asha_decisions,
    expected_epochs,
    median_cost,
    plan,
    replan,
    rungs,
    seconds_used,
)

#: (budget s, concurrency, seconds per epoch, overhead s, epoch cap): CPU-sized to GPU-sized cases.
CASES = [
    (30, 2, 1.0, 2.0, 16),
    (120, 2, 2.0, 3.0, 16),
    (300, 2, 2.0, 3.0, 16),
    (900, 2, 3.0, 3.0, 16),
    (900, 1, 0.5, 1.0, 8),
    (900, 8, 0.2, 2.0, 30),
    (3600, 4, 12.0, 5.0, 20),
]


def _cost_of(p: Plan) -> float:
    """The expected worker-seconds of a plan's trials."""
    return p.trials * (p.overhead_s + p.expected_epochs * p.epoch_s)


@pytest.mark.parametrize(("budget", "workers", "epoch_s", "overhead", "cap"), CASES)
def test_a_plan_fills_the_budget_within_one_trial(budget, workers, epoch_s, overhead, cap) -> None:
    p = plan(budget, workers, Cost(epoch_s, overhead), cap)
    capacity = budget * workers
    per_trial = overhead + p.expected_epochs * epoch_s
    assert _cost_of(p) <= capacity
    assert _cost_of(p) > capacity - per_trial  # one more trial would not fit
    assert _cost_of(p) >= 0.8 * capacity
    assert overhead + p.max_epochs * epoch_s <= budget  # a survivor can reach the top rung
    assert 1 <= p.grace_period <= p.max_epochs <= cap


def test_asha_rungs_and_expected_epochs_follow_ray() -> None:
    assert rungs(8, 2, 2) == (2, 4, 8)
    assert rungs(10, 2, 2) == (2, 4, 8)  # Ray's rungs: grace x eta^k, k < log(max/grace)/log(eta) + 1
    assert rungs(9, 1, 3) == (1, 3, 9)
    assert expected_epochs(8, 2, 2) == 2 + 2 / 2 + 4 / 4
    assert expected_epochs(10, 2, 2) == 2 + 2 / 2 + 4 / 4 + 2 / 8
    assert expected_epochs(9, 1, 3) == 1 + 2 / 3 + 6 / 9
    assert expected_epochs(8, 2, 2, asha=False) == 8


HALF_QUARTER = Fidelity(resolution=0.5, subset=0.25)  # a reduced epoch costs 1/16 of a full one


def test_with_fidelity_asha_decides_where_its_budget_rungs_fall() -> None:
    # budgets 1/16, 1/8, then +1 a full epoch; Ray's milestones 1/8, 1/4, 1/2, 1, 2, 4: the first
    # full epoch passes 1/4, 1/2 and 1 at once and is recorded at 1 only (none is filled later)
    assert asha_decisions(8, 2, 2, HALF_QUARTER) == (2, 3, 4, 6)
    assert expected_epochs(8, 2, 2, fidelity=HALF_QUARTER) == 2 + 1 / 2 + 1 / 4 + 2 / 8 + 2 / 16
    assert asha_decisions(8, 2, 2, Fidelity()) == rungs(8, 2, 2)  # --fidelity epochs: as before


def test_a_plan_with_fidelity_counts_the_cheaper_grace_epochs() -> None:
    cost = Cost(epoch_s=2.0, overhead_s=3.0, low_epoch_s=0.4)
    by_epochs = plan(300, 2, cost, 8, grace_period=2)
    cheap = plan(300, 2, cost, 8, grace_period=2, fidelity=HALF_QUARTER)
    assert (cheap.max_epochs, cheap.grace_period, cheap.low_epochs, cheap.rungs) == (8, 2, 2, (2, 3, 4, 6))
    per_trial = 3.0 + 2 * 0.4 + (cheap.expected_epochs - 2) * 2.0  # measured reduced and full epochs
    assert cheap.trial_s() == pytest.approx(per_trial)
    assert cheap.grace_s() == pytest.approx(3.0 + 2 * 0.4)
    assert cheap.trials == 600 // per_trial  # the workers' 600 s, filled
    assert cheap.trials > 1.5 * by_epochs.trials  # 6.05 s a trial against 11 s
    assert "(the first 2 at 0.0625 cost)" in cheap.describe()
    unmeasured = plan(300, 2, Cost(2.0, 3.0), 8, grace_period=2, fidelity=HALF_QUARTER)
    assert unmeasured.grace_s() == pytest.approx(3.0 + 2 * 2.0 / 16)  # the nominal cost until measured
    assert Plan.from_dict(cheap.as_dict()) == cheap


def test_a_short_budget_trades_epochs_for_candidates() -> None:
    roomy = plan(900, 2, Cost(1.0, 2.0), 16)
    tight = plan(40, 2, Cost(3.0, 2.0), 16)
    assert roomy.max_epochs == 16
    assert tight.max_epochs < 16
    # enough trials that each worker sees two and every rung holds eta trials to choose among
    assert tight.trials >= max(4, tight.reduction_factor ** len(tight.rungs))


def test_no_trial_is_planned_that_cannot_finish_its_grace_period() -> None:
    nothing = plan(10, 2, Cost(epoch_s=8.0, overhead_s=5.0), 16)  # even one epoch needs 13 s
    assert nothing.trials == 0
    p = plan(300, 2, Cost(2.0, 3.0), 16)
    late = replan(
        p, seconds_left=3.0 + p.grace_period * 2.0 - 0.5, concurrency=2, cost=Cost(2.0, 3.0), started=9
    )
    assert late.trials == 9  # only those already started
    just = replan(p, seconds_left=3.0 + p.grace_period * 2.0, concurrency=2, cost=Cost(2.0, 3.0), started=9)
    assert just.trials > 9


def test_explicit_trials_and_epochs_cap_the_plan() -> None:
    free = plan(900, 2, Cost(1.0, 1.0), 16)
    capped = plan(900, 2, Cost(1.0, 1.0), 6, trials_cap=10, grace_period=2, reduction_factor=3)
    assert free.trials > 10
    assert (capped.trials, capped.max_epochs, capped.grace_period, capped.rungs) == (10, 6, 2, (2, 6))
    assert replan(capped, 900, 2, Cost(1.0, 1.0), started=4, trials_cap=10).trials == 10


def test_a_replan_when_the_measured_cost_doubles_halves_the_trials_and_keeps_the_rungs() -> None:
    first = plan(600, 2, Cost(2.0, 0.0), 16)
    again = replan(first, 600, 2, Cost(4.0, 0.0), started=0)
    assert (again.max_epochs, again.grace_period, again.rungs) == (
        first.max_epochs,
        first.grace_period,
        first.rungs,
    )
    assert again.trials == pytest.approx(first.trials / 2, abs=1)
    assert again.epoch_s == 4.0


def test_running_trials_take_their_remaining_epochs_from_the_capacity_first() -> None:
    p = plan(600, 2, Cost(2.0, 0.0), 16)
    idle = replan(p, 300, 2, Cost(2.0, 0.0), started=10)
    busy = replan(p, 300, 2, Cost(2.0, 0.0), started=10, running_epochs=[0, 0])
    assert idle.trials - busy.trials == 2  # two fresh running trials: two trials' worth of epochs


def test_the_measured_cost_is_the_median() -> None:
    assert median_cost([], []) is None
    assert median_cost([1.0, 9.0, 2.0], [0.5]) == Cost(2.0, 0.5)
    assert median_cost([2.0], [0.5], [0.3, 0.1, 0.2]) == Cost(2.0, 0.5, 0.2)
    assert median_cost([], [0.5], [0.3]) is None  # reduced epochs alone say little of a full one


def test_a_plan_round_trips_through_its_stored_form() -> None:
    p = plan(300, 2, Cost(2.0, 3.0), 16)
    assert Plan.from_dict({**p.as_dict(), "why": "measured the first epoch"}) == p
    assert "trials x up to 16 epochs, rungs 4,8,16 (eta 2)" in p.describe()


def test_budget_used_is_the_union_of_trial_intervals() -> None:
    t0 = datetime(2026, 11, 30, tzinfo=timezone.utc)

    def at(seconds: float) -> datetime:
        return t0 + timedelta(seconds=seconds)

    intervals = [
        (at(0), at(60)),
        (at(30), at(90)),  # overlaps: 30 s more
        (at(500), at(520)),  # after a pause: the pause is not charged
        (at(510), None),  # no finish known: nothing beyond its start
        (None, None),
    ]
    assert seconds_used(intervals) == 90 + 20
