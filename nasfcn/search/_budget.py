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
        if self.rungs:
            text += f", rungs {','.join(map(str, self.rungs))} (eta {self.reduction_factor})"
        return text


def rungs(max_epochs: int, grace_period: int, reduction_factor: int) -> tuple[int, ...]:
    """ASHA's milestones as Ray builds them: ``grace x eta^k`` for ``k`` below
    ``log(max/grace) / log(eta) + 1``."""
    count = int(math.log(max_epochs / grace_period) / math.log(reduction_factor) + 1)
    return tuple(grace_period * reduction_factor**k for k in range(count))


def expected_epochs(max_epochs: int, grace_period: int, reduction_factor: int, asha: bool = True) -> float:
    """Epochs an average trial trains under ASHA (one in ``eta`` passes each rung), or all under FIFO."""
    if not asha:
        return float(max_epochs)
    milestones = [*rungs(max_epochs, grace_period, reduction_factor), max_epochs]
    total, previous = 0.0, 0
    for level, epoch in enumerate(milestones):
        if epoch > previous:
            total += (epoch - previous) / reduction_factor**level
            previous = epoch
    return total


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
) -> Plan:
    """The plan that fills ``seconds_left`` on ``concurrency`` workers (rules in the module docstring)."""
    fallback: Plan | None = None
    for max_epochs in range(epoch_cap, 0, -1):
        grace = min(max_epochs, grace_period or default_grace(max_epochs))
        candidate = _sized(
            Plan(
                trials=0,
                max_epochs=max_epochs,
                grace_period=grace,
                reduction_factor=reduction_factor,
                rungs=rungs(max_epochs, grace, reduction_factor) if asha else (),
                expected_epochs=expected_epochs(max_epochs, grace, reduction_factor, asha),
                epoch_s=cost.epoch_s,
                overhead_s=cost.overhead_s,
                seconds_left=seconds_left,
            ),
            concurrency,
            trials_cap,
        )
        fallback = candidate
        fits_one = cost.overhead_s + max_epochs * cost.epoch_s <= seconds_left
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
    free = replace(current, epoch_s=cost.epoch_s, overhead_s=cost.overhead_s, seconds_left=seconds_left)
    more = _fitting(free, concurrency, concurrency * seconds_left - left)
    total = started + more
    return replace(free, trials=min(total, trials_cap) if trials_cap else total)


def _sized(shape: Plan, concurrency: int, trials_cap: int | None) -> Plan:
    trials = _fitting(shape, concurrency, concurrency * shape.seconds_left)
    return replace(shape, trials=min(trials, trials_cap) if trials_cap else trials)


def _fitting(shape: Plan, concurrency: int, capacity_s: float) -> int:
    """Trials of ``shape`` whose expected cost fits ``capacity_s``; none when a grace period cannot end."""
    if shape.overhead_s + shape.grace_period * shape.epoch_s > shape.seconds_left:
        return 0
    per_trial = shape.overhead_s + shape.expected_epochs * shape.epoch_s
    return max(0, math.floor(capacity_s / per_trial)) if per_trial > 0 else 0


def median_cost(epoch_seconds: Iterable[float], overheads: Iterable[float]) -> Cost | None:
    """The measured cost, or None before the first epoch."""
    epochs = [s for s in epoch_seconds if s > 0]
    if not epochs:
        return None
    extra = [s for s in overheads if s >= 0]
    return Cost(statistics.median(epochs), statistics.median(extra) if extra else 0.0)


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
