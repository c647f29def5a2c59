"""The end of a search: its top networks trained again with extra seeds (``nasfcn.confirm``'s policy).

Confirmation runs are trials of the search like any other: the same Ray executor and the
same recorder write them, under new numbers, each with ``confirms`` = the number of the trial
it re-seeds and its own ``seed``. They train the full schedule of the trial they confirm (its
epochs, FIFO: nothing stops them early) and no optimizer hears of them. Which runs are left is
computed from the database every time (``confirmation_runs``), so a resumed search neither
repeats a finished one nor loses one: an interrupted run trains again under its own number.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ray.tune.search import Searcher

from nasfcn.confirm import ConfirmPolicy, ConfirmRun, confirmation_runs
from nasfcn.genotype import Genotype
from nasfcn.search._searcher import _NumberedSearch

log = logging.getLogger("nasfcn.search")


@dataclass(frozen=True)
class ConfirmationPlan:
    """What a driver's confirmation phase runs: the trials it confirms and the runs left."""

    policy: ConfirmPolicy
    targets: list[Mapping[str, Any]]  # trial rows, best first
    runs: list[ConfirmRun]

    def describe(self) -> str:
        numbers = ", ".join(str(row["number"]) for row in self.targets)
        return (
            f"confirming the top {len(self.targets)} networks (trials {numbers}) with "
            f"{self.policy.seeds} extra seeds each: {len(self.runs)} runs to train"
        )


def plan_confirmation(
    rows: Sequence[Mapping[str, Any]], policy: ConfirmPolicy, seed: int
) -> ConfirmationPlan:
    """The confirmation left to do, from every trial row of the search (finished and interrupted)."""
    targets, runs = confirmation_runs(rows, policy, seed)
    return ConfirmationPlan(policy, targets, runs)


def confirmation_seconds(
    runs: int, concurrency: int, epochs: int, epoch_s: float, overhead_s: float
) -> float:
    """Wall time of ``runs`` full trials of ``epochs`` on ``concurrency`` workers at the measured cost."""
    if runs <= 0:
        return 0.0
    return math.ceil(runs / max(1, concurrency)) * (overhead_s + epochs * epoch_s)


#: A reusable result for one run: (genotype, recipe) -> the cached result, or None.
RunLookup = Callable[[Genotype, dict[str, Any]], dict[str, Any] | None]


@dataclass(frozen=True)
class Rerun:
    """One run of an earlier trial's network and knobs with other recipe settings (a confirmation
    run: another seed; a final run: more epochs), recorded with ``mark`` (``confirms``/``extends``)."""

    target: Mapping[str, Any]  # the earlier trial's row
    overrides: Mapping[str, Any]  # recipe fields this run changes
    mark: Mapping[str, int]  # the trial row's link to the target, e.g. {"confirms": 3}
    number: int | None = None  # an interrupted run again: its own number; None: the next


class RerunSearch(_NumberedSearch, Searcher):
    """Each rerun once, in order: the target's network and knobs with the run's recipe changes.

    No optimizer hears of these runs; FIFO trains them to the end."""

    def __init__(
        self,
        runs: Sequence[Rerun],
        recipe: dict[str, Any],
        first_number: int,
        lookup: RunLookup | None = None,
    ) -> None:
        super().__init__(first_number, None, metric="val_miou", mode="max")
        self._runs = list(runs)
        self._recipe = recipe
        self._lookup = lookup
        self._next = 0

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self._next >= len(self._runs):
            return Searcher.FINISHED  # type: ignore[return-value]  # Ray's own sentinel
        run = self._runs[self._next]
        self._next += 1
        genotype = Genotype.from_json(run.target["genotype_json"])
        config = self._trial_config(genotype, None, run.number)
        config["recipe_overrides"] = dict(run.overrides)
        config.update(run.mark)
        if run.target.get("reference"):
            config["reference"] = run.target["reference"]
        if self._lookup is not None:
            config["cached"] = self._lookup(genotype, {**self._recipe, **run.overrides})
        return config

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        pass


def confirmation_reruns(plan: ConfirmationPlan, default_epochs: int) -> list[Rerun]:
    """The confirmation runs as reruns: the confirmed trial's full schedule with another seed."""
    targets = {int(row["number"]): row for row in plan.targets}
    runs = []
    for run in plan.runs:
        target = targets[run.confirms]
        overrides = {"seed": run.seed, "epochs": int(target.get("epochs_trained") or default_epochs)}
        runs.append(Rerun(target, overrides, {"confirms": run.confirms}, run.number))
    return runs
