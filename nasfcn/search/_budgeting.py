"""The driver's side of ``--time-budget``: what is left of the budget, and where plans are recorded.

A budget is wall-clock minutes for the whole search. A resumed search continues with what
is left: the budget minus the wall time during which trials of its earlier runs were
running (the union of their intervals; a trial a killed driver left running counts up to
its last recorded epoch). So a resume charges neither the pause before it nor the seconds
an earlier driver spent starting Ray, and a larger ``--time-budget`` extends the search.

Every plan is written to the search log and into the search's stored config (``budget``:
the budget, what earlier runs used, the plans this run made), which a resume reads to keep
the first plan's epochs and rungs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from nasfcn.search._budget import UNCAPPED_TRIALS, Plan, seconds_used
from nasfcn.search._config import SearchConfig, default_final_share
from nasfcn.store import Store, create_search, epochs_frame, get_search, trial_times_frame

log = logging.getLogger("nasfcn.search")
BUDGET = "budget"  # the entry of the stored config that holds the budget's record
_KEPT_PLANS = 20  # plans kept in the stored record (the log has every one)


@dataclass(frozen=True)
class BudgetStart:
    """The budget of one driver: all of it, what earlier runs used, the plan they left."""

    total_s: float
    used_before_s: float = 0.0
    shape: Plan | None = None  # the last stored plan: its epochs and rungs are kept

    @property
    def seconds(self) -> float:
        """What this driver may spend."""
        return self.total_s - self.used_before_s

    def record(self, plans: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        return {
            "total_s": self.total_s,
            "used_before_s": round(self.used_before_s, 3),
            "plans": plans if plans is not None else ([self.shape.as_dict()] if self.shape else []),
        }


def budget_start(config: SearchConfig, store: Store) -> BudgetStart | None:
    """The budget of this run; on a resume, read before anything marks the old trials interrupted."""
    if not config.time_budget_min:
        return None
    total = config.time_budget_min * 60
    if not config.execution.resume or config.name is None:
        return BudgetStart(total)
    stored = get_search(store, config.name) or {}
    plans = ((stored.get("config") or {}).get(BUDGET) or {}).get("plans") or []
    shape = Plan.from_dict(plans[-1]) if plans else None
    return BudgetStart(total, used_before(store, config.name), shape)


def used_before(store: Store, name: str) -> float:
    """Seconds during which any trial of the search ran (see the module docstring)."""
    times = trial_times_frame(store, name)
    if times.empty:
        return 0.0
    epochs = epochs_frame(store, name, columns=("epoch", "seconds"))
    trained = epochs.groupby("trial_id")["seconds"].sum() if not epochs.empty else pd.Series(dtype=float)
    intervals = []
    for row in times.itertuples():
        start = None if pd.isna(row.started_at) else row.started_at.to_pydatetime()
        end = None if pd.isna(row.finished_at) else row.finished_at.to_pydatetime()
        if start is not None and end is None:
            end = start + pd.Timedelta(seconds=float(trained.get(row.trial_id, 0.0))).to_pytimedelta()
        intervals.append((start, end))
    return seconds_used(intervals)


def budgeted(config: SearchConfig, given: frozenset[str]) -> SearchConfig:
    """A new budgeted search without --epochs trains up to the cap; without --trials, as many as
    fit; without --final-share, keeps the share its budget's length calls for. A resume keeps
    what the search stored (a longer --time-budget does not switch its final runs on or off)."""
    from nasfcn.search._budget import DEFAULT_EPOCH_CAP

    if not config.time_budget_min or config.execution.resume:
        return config
    changes: dict[str, Any] = {}
    if "epochs" not in given:
        changes["epochs"] = DEFAULT_EPOCH_CAP
    if "trials" not in given:
        changes["trials"] = UNCAPPED_TRIALS
    if "final_share" not in given:
        changes["final_share"] = default_final_share(config.time_budget_min)
    return replace(config, **changes) if changes else config


def trials_cap(config: SearchConfig, remaining: int) -> int | None:
    """The most trials the plan may hold in this driver: --trials when one was given."""
    return remaining if config.trials < UNCAPPED_TRIALS else None


def plan_writer(
    store: Store, name: str, dataset: str, config: dict[str, Any], start: BudgetStart
) -> Callable[[Plan, str], None]:
    """``on_plan`` for the keeper: each plan goes to the log and into the stored config."""
    plans: list[dict[str, Any]] = []

    def write(plan: Plan, why: str) -> None:
        plans.append({**plan.as_dict(), "why": why})
        log.info("time budget plan (%s): %s; %s", why, plan.describe(), json.dumps(plan.as_dict()))
        stored = {**config, BUDGET: start.record(plans[-_KEPT_PLANS:])}
        store.retrying(
            lambda: create_search(store, name, dataset, config=stored, resume=True), "recording the plan"
        )

    return write


def planned_config(config: SearchConfig, plan: Plan) -> SearchConfig:
    """``config`` with the plan's epochs and rungs: what the scheduler is built from."""
    return replace(
        config,
        epochs=plan.max_epochs,
        grace_period=plan.grace_period,
        reduction_factor=plan.reduction_factor,
    )
