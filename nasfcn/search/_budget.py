"""Planning a search to a time budget (``nasfcn search --time-budget MINUTES``): pure arithmetic.

The driver measures what an epoch costs on this machine (the median of the epochs trials
have reported, and of the seconds a trial spends before its first epoch ends beyond that
epoch: actor start, cost measurement, data), then asks ``plan`` how many trials, how many
epochs and which ASHA rungs fill the budget. The rules, and why:

* ASHA with grace ``g``, factor ``eta`` and ``m`` epochs has rungs ``g, g*eta, g*eta^2, ...``
  up to ``m`` (as Ray's ASHAScheduler builds them). All trials train ``g`` epochs, one in
  ``eta`` goes on to the next rung, one in ``eta^2`` to the one after, and the trials past
  the last rung train up to ``m``. So a trial costs on average
  ``E = g + sum_k (r_k - r_(k-1)) / eta^k`` epochs (``m`` under FIFO), plus its overhead.
* ``trials = floor(concurrency x budget / (overhead + E x seconds_per_epoch))``: the
  expected work fills every worker for the whole budget, within one trial's cost.
* ``m`` is the largest epoch count up to the cap for which (a) one trial can train all ``m``
  epochs inside the budget (a survivor must be able to reach the top rung) and (b) at least
  ``max(2 x concurrency, eta^rungs)`` trials fit: every worker sees two candidates, and with
  one in ``eta`` passing each rung, every rung (the top one too) is expected to hold ``eta``
  trials or more to choose among. Fewer epochs buy more candidates: on short budgets
  breadth is what a search is for.
* ``g`` is ``--grace-period`` if given, else ``m // 4`` (at least 1), the rule
  ``SearchConfig.asha_grace_period`` states with its measurement.
* No trial is planned that cannot finish its grace period: when ``overhead + g x seconds
  per epoch`` exceeds the time left, the plan holds no more trials.

* With ``--fidelity resolution=R,subset=F`` the grace period's ``g`` epochs train at reduced
  fidelity (``nasfcn.recipe.Fidelity``) and ASHA counts full-epoch equivalents, so its rungs
  fall at other epochs: ``decision_epochs`` walks Ray's own rule to find them, and a trial
  costs ``g`` reduced epochs (every trial trains them) plus its expected full epochs, each
  at its own measured seconds. The first plan waits for the first full-size epoch: a
  reduced epoch says little of what a full one costs (validation is always at full size).

A re-plan (``replan``) keeps ``m``, ``g`` and ``eta``, so every trial of a search trains
with the same recipe and ASHA's rungs keep their meaning; it recounts the trials from the
time left, the measured cost now, and the epochs the running trials still need.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from nasfcn.recipe import Fidelity

#: Epochs a trial may train when --time-budget is given without --epochs: a cap, rarely the
#: plan on a CPU (a 15-minute budget at 2-4 s an epoch plans about 8); with eta 2, grace 4
#: it leaves two promotions above the grace period.
DEFAULT_EPOCH_CAP = 16
#: Trials a budgeted search without --trials may run at most (Ray Tune needs a count).
UNCAPPED_TRIALS = 100_000


@dataclass(frozen=True)
class Cost:
    """What training costs on this machine, as measured by the search's own trials."""

    epoch_s: float  # median seconds of one epoch (training plus validation)
    overhead_s: float = 0.0  # median seconds a trial spends outside its epochs
    low_epoch_s: float | None = None  # median seconds of a reduced-fidelity epoch, once measured


@dataclass(frozen=True)
class Plan:
    """How a budget is spent: trials, epochs per trial and ASHA's rungs."""

    trials: int  # trials the search runs in all (those already started included)
    max_epochs: int
    grace_period: int
    reduction_factor: int
    rungs: tuple[int, ...]  # epochs at which ASHA may stop a trial (empty under FIFO)
    expected_epochs: float  # epochs an average trial trains
    epoch_s: float  # the measured cost the plan was made with
    overhead_s: float
    seconds_left: float  # the budget the plan was made for
    low_epochs: int = 0  # --fidelity: the first epochs, at reduced fidelity (the grace period)
    low_cost: float = 1.0  # a reduced epoch's nominal cost in full epochs ((s/S)^2 x f)
    low_epoch_s: float | None = None  # the measured seconds of a reduced epoch

    def trial_s(self, cost: Cost | None = None) -> float:
        """Seconds an average trial costs: its overhead, its reduced and its full epochs."""
        return self._seconds(self.expected_epochs, cost)

    def grace_s(self, cost: Cost | None = None) -> float:
        """Seconds a trial needs to reach its grace period (its first possible stop)."""
        return self._seconds(float(self.grace_period), cost)

    def _seconds(self, epochs: float, cost: Cost | None) -> float:
        cost = cost or Cost(self.epoch_s, self.overhead_s, self.low_epoch_s)
        low = min(float(self.low_epochs), epochs)
        low_s = cost.low_epoch_s if cost.low_epoch_s is not None else self.low_cost * cost.epoch_s
        return cost.overhead_s + low * low_s + (epochs - low) * cost.epoch_s

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rungs"] = list(self.rungs)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**{**known, "rungs": tuple(known.get("rungs", ()))})

    def describe(self) -> str:
        """One line: ``14 trials x up to 8 epochs, rungs 2,4,8 (eta 2)``."""
        text = f"{self.trials} trials x up to {self.max_epochs} epochs"
        if self.low_epochs:
            text += f" (the first {self.low_epochs} at {self.low_cost:.3g} cost)"
        if self.rungs:
            text += f", rungs {','.join(map(str, self.rungs))} (eta {self.reduction_factor})"
        return text


def rungs(max_epochs: int, grace_period: int, reduction_factor: int) -> tuple[int, ...]:
    """ASHA's milestones as Ray builds them: ``grace x eta^k`` for ``k`` below
    ``log(max/grace) / log(eta) + 1``."""
    count = int(math.log(max_epochs / grace_period) / math.log(reduction_factor) + 1)
    return tuple(grace_period * reduction_factor**k for k in range(count))


def expected_epochs(
    max_epochs: int,
    grace_period: int,
    reduction_factor: int,
    asha: bool = True,
    fidelity: Fidelity | None = None,
) -> float:
    """Epochs an average trial trains under ASHA (one in ``eta`` passes each decision), or all under FIFO."""
    if not asha:
        return float(max_epochs)
    milestones = [*asha_decisions(max_epochs, grace_period, reduction_factor, fidelity), max_epochs]
    total, previous = 0.0, 0
    for level, epoch in enumerate(milestones):
        if epoch > previous:
            total += (epoch - previous) / reduction_factor**level
            previous = epoch
    return total


def asha_decisions(
    max_epochs: int, grace_period: int, reduction_factor: int, fidelity: Fidelity | None = None
) -> tuple[int, ...]:
    """The epochs at which ASHA may stop a trial: its rungs, or with a reduced ``fidelity``
    (whose reduced epochs are the grace period's) where its budget rungs fall."""
    if fidelity is None or not fidelity.reduced:
        return rungs(max_epochs, grace_period, reduction_factor)
    schedule = fidelity.with_low_epochs(grace_period)
    low, high = schedule.budget(grace_period), schedule.budget(max_epochs)
    count = int(math.log(high / low) / math.log(reduction_factor) + 1)
    milestones = [low * reduction_factor**k for k in range(count)]
    budgets = [schedule.budget(epoch) for epoch in range(1, max_epochs + 1)]
    return tuple(decision_epochs(milestones, budgets, stop_last_trials=False))


def decision_epochs(
    milestones: Sequence[float], budgets: Sequence[float], stop_last_trials: bool
) -> list[int]:
    """The epochs (1-based) at which Ray's ASHA bracket compares a trial with a rung, given the
    rung ``milestones`` and the budget each epoch ends at: Ray's own rule, walked for one trial."""
    recorded: set[float] = set()
    decisions = []
    for epoch, spent in enumerate(budgets, start=1):
        for milestone in sorted(milestones, reverse=True):
            if spent >= milestone and milestone in recorded and not stop_last_trials:
                break
            if spent < milestone or milestone in recorded:
                continue
            recorded.add(milestone)
            decisions.append(epoch)
            break
    return decisions


def default_grace(max_epochs: int) -> int:
    return max(1, max_epochs // 4)


def plan(
    seconds_left: float,
    concurrency: int,
    cost: Cost,
    epoch_cap: int,
    *,
    trials_cap: int | None = None,
    grace_period: int | None = None,
    reduction_factor: int = 2,
    asha: bool = True,
    fidelity: Fidelity | None = None,
) -> Plan:
    """The plan that fills ``seconds_left`` on ``concurrency`` workers (rules in the module docstring)."""
    fallback: Plan | None = None
    reduced = fidelity is not None and fidelity.reduced
    for max_epochs in range(epoch_cap, 0, -1):
        grace = min(max_epochs, grace_period or default_grace(max_epochs))
        candidate = _sized(
            Plan(
                trials=0,
                max_epochs=max_epochs,
                grace_period=grace,
                reduction_factor=reduction_factor,
                rungs=asha_decisions(max_epochs, grace, reduction_factor, fidelity) if asha else (),
                expected_epochs=expected_epochs(max_epochs, grace, reduction_factor, asha, fidelity),
                epoch_s=cost.epoch_s,
                overhead_s=cost.overhead_s,
                seconds_left=seconds_left,
                low_epochs=grace if reduced else 0,
                low_cost=fidelity.epoch_cost if fidelity is not None and reduced else 1.0,
                low_epoch_s=cost.low_epoch_s if reduced else None,
            ),
            concurrency,
            trials_cap,
        )
        fallback = candidate
        fits_one = replace(candidate, expected_epochs=float(max_epochs)).trial_s() <= seconds_left
        enough = max(2 * concurrency, reduction_factor ** len(candidate.rungs))
        if fits_one and candidate.trials >= min(enough, trials_cap or enough):
            return candidate
    assert fallback is not None  # epoch_cap >= 1
    return fallback


def replan(
    current: Plan,
    seconds_left: float,
    concurrency: int,
    cost: Cost,
    started: int,
    running_epochs: Sequence[int] = (),
    trials_cap: int | None = None,
) -> Plan:
    """``current`` recounted for the time left: its epochs and rungs, the trials that still fit.

    ``started``: trials started so far; ``running_epochs``: the epochs each running trial
    has trained, whose expected remainder is taken from the capacity first.
    """
    left = sum(max(0.0, current.expected_epochs - done) for done in running_epochs) * cost.epoch_s
    low_s = cost.low_epoch_s if current.low_epochs else None
    free = replace(
        current,
        epoch_s=cost.epoch_s,
        overhead_s=cost.overhead_s,
        seconds_left=seconds_left,
        low_epoch_s=low_s if low_s is not None else current.low_epoch_s,
    )
    more = _fitting(free, concurrency, concurrency * seconds_left - left)
    total = started + more
    return replace(free, trials=min(total, trials_cap) if trials_cap else total)


def _sized(shape: Plan, concurrency: int, trials_cap: int | None) -> Plan:
    trials = _fitting(shape, concurrency, concurrency * shape.seconds_left)
    return replace(shape, trials=min(trials, trials_cap) if trials_cap else trials)


def _fitting(shape: Plan, concurrency: int, capacity_s: float) -> int:
    """Trials of ``shape`` whose expected cost fits ``capacity_s``; none when a grace period cannot end."""
    if shape.grace_s() > shape.seconds_left:
        return 0
    per_trial = shape.trial_s()
    return max(0, math.floor(capacity_s / per_trial)) if per_trial > 0 else 0


def median_cost(
    epoch_seconds: Iterable[float], overheads: Iterable[float], low_seconds: Iterable[float] = ()
) -> Cost | None:
    """The measured cost, or None before the first (full-size) epoch."""
    epochs = [s for s in epoch_seconds if s > 0]
    if not epochs:
        return None
    extra = [s for s in overheads if s >= 0]
    low = [s for s in low_seconds if s > 0]
    return Cost(
        statistics.median(epochs),
        statistics.median(extra) if extra else 0.0,
        statistics.median(low) if low else None,
    )


def seconds_used(intervals: Iterable[tuple[datetime | None, datetime | None]]) -> float:
    """Budget an earlier run of a search used: the wall time during which any of its trials ran.

    The union of the trials' [started, finished] intervals, so the time between a killed
    driver and its resume, or Ray's start, is not charged. A trial without a finish time
    counts up to its start (nothing is known of it beyond).
    """
    spans = sorted((start, end or start) for start, end in intervals if start is not None)
    used, reach = 0.0, None
    for start, end in spans:
        if reach is None or start > reach:
            used += (end - start).total_seconds()
            reach = end
        elif end > reach:
            used += (end - reach).total_seconds()
            reach = end
    return used
