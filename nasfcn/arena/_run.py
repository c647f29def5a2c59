"""One arena as ``nasfcn arena`` runs it: a plan checked up front, its replays, their comparison.

Everything a plan can get wrong (an unknown strategy or scheduler, a multi-objective strategy
with one objective, a target no architecture reaches) is refused before the first replay, so
a long arena never fails at its end. The registered names are read when the plan is checked:
a strategy registered for ``nasfcn search`` (even inside a test) is in the arena at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from nasfcn import catalogue
from nasfcn.arena._measure import BASELINE, ArenaSummary, compare
from nasfcn.arena._replay import ArenaError, ArenaSearch, ArenaTable, ReplayResult, pair_name, replays
from nasfcn.confirm import ConfirmPolicy
from nasfcn.registry import did_you_mean
from nasfcn.search import SEARCHERS

#: The target ``nasfcn arena`` uses by default: the top 1% of the table's architectures.
DEFAULT_TARGET = "1%"


@dataclass(frozen=True)
class ArenaPlan:
    """What an arena replays: every strategy x scheduler, ``repeats`` times (seeds seed..seed+R-1)."""

    strategies: tuple[str, ...]
    schedulers: tuple[str, ...]
    trials: int
    repeats: int
    concurrency: int = 1
    seed: int = 0
    objectives: tuple[str, ...] = ("miou",)
    grace_period: int | None = None  # ASHA; None: the search's default
    reduction_factor: int = 2
    confirm: ConfirmPolicy | None = None  # every search ends confirming its top K; None: off
    #: (strategy, scheduler) every other pair is tested against; one of the plan's pairs, except
    #: the default random + fifo, which may be absent (then no pair has a p-value)
    baseline: tuple[str, str] = BASELINE

    def settings(self) -> dict[str, Any]:
        """The plan as plain JSON values, as the stored config and the ``--json`` summary hold it."""
        return {
            "strategies": list(self.strategies),
            "schedulers": list(self.schedulers),
            "trials": self.trials,
            "repeats": self.repeats,
            "concurrency": self.concurrency,
            "seed": self.seed,
            "objectives": list(self.objectives),
            "grace_period": self.grace_period,
            "reduction_factor": self.reduction_factor,
            "confirm_top": None if self.confirm is None else self.confirm.top,
            "confirm_seeds": None if self.confirm is None else self.confirm.seeds,
            "baseline": pair_name(self.baseline),
        }

    def searches(self) -> list[ArenaSearch]:
        """Strategy-major: every scheduler of the first strategy, then of the next."""
        return [
            ArenaSearch(
                strategy,
                scheduler,
                self.trials,
                self.concurrency,
                self.objectives,
                self.grace_period,
                self.reduction_factor,
                self.confirm,
            )
            for strategy in self.strategies
            for scheduler in self.schedulers
        ]


@dataclass(frozen=True)
class Target:
    """The true mean val mIoU that counts as found, and how it was asked for."""

    value: float
    spec: str  # as given: "1%" (a top share of architectures) or "0.62" (a val mIoU)
    reaching: int  # architectures whose mean is at or above it
    architectures: int

    def describe(self) -> str:
        share = f"top {self.spec} of" if self.spec.endswith("%") else "given; reached by"
        return (
            f"true mean val mIoU >= {self.value:.4f} ({share} {self.architectures} architectures: "
            f"{self.reaching} at or above it)"
        )


@dataclass(frozen=True)
class ArenaRun:
    """A finished arena: its plan, the table it ran on, every replay and what ``compare`` measured."""

    name: str
    plan: ArenaPlan
    board: ArenaTable
    target: Target
    results: tuple[ReplayResult, ...]
    summary: ArenaSummary

    @property
    def table_name(self) -> str:
        return str(self.board.table.facts.get("name") or self.board.table.source)

    @property
    def table_hash(self) -> str:
        """The checksum of the table's rows: the same hash, the same table."""
        return str(self.board.table.facts.get("checksum"))


def check_plan(board: ArenaTable, plan: ArenaPlan) -> list[ArenaSearch]:
    """The plan's searches, or an ``ArenaError`` naming what does not fit."""
    check_names(plan)
    for option, value in (("--trials", plan.trials), ("--repeats", plan.repeats)):
        if value < 1:
            raise ArenaError(f"{option} must be >= 1, got {value}")
    searches = plan.searches()
    for search in searches:
        board.config(search, plan.seed)  # the search's own checks: objectives, ASHA settings
    return searches


def check_names(plan: ArenaPlan, baseline_given: bool = False) -> None:
    """Refuse a strategy or scheduler nobody registered, or a baseline that is not one of the
    plan's pairs (no table needed to know). The default baseline may be absent unless the user
    named it (``baseline_given``): asking for p-values against a pair never replayed is a mistake."""
    _check_names("--strategies", "strategy", plan.strategies, SEARCHERS.names())
    _check_names("--schedulers", "scheduler", plan.schedulers, catalogue.SCHEDULERS.names())
    _check_baseline(plan, baseline_given)


def parse_pair(text: str, option: str = "--baseline") -> tuple[str, str]:
    """``"tpe+asha"`` or ``"tpe + asha"`` -> ``("tpe", "asha")``; anything else, an ``ArenaError``."""
    parts = [part.strip() for part in text.split("+")]
    if len(parts) != 2 or not all(parts):
        raise ArenaError(f"{option} {text!r}: give one STRATEGY+SCHEDULER pair, e.g. random+fifo")
    return parts[0], parts[1]


def target_of(board: ArenaTable, spec: str = DEFAULT_TARGET) -> Target:
    """``"1%"``: the mean an architecture needs to be in the top 1%; ``"0.62"``: that val mIoU."""
    text = spec.strip()
    means = board.means[~np.isnan(board.means)]
    try:
        number = float(text[:-1] if text.endswith("%") else text)
    except ValueError:
        number = math.nan
    if text.endswith("%"):
        if not 0 < number <= 100:
            raise ArenaError(f"--target {spec!r}: a share of architectures must be in (0%, 100%], e.g. 1%")
        value = board.target(number / 100)
    else:
        if not 0 < number <= 1:
            raise ArenaError(
                f"--target {spec!r}: give a share of architectures (e.g. 1%) or a val mIoU in (0, 1]"
            )
        value = number
    reaching = int((means >= value).sum())
    if reaching == 0:
        raise ArenaError(
            f"--target {spec!r}: no architecture of {board.table.source} has a mean val mIoU of "
            f"{value:.4f} or more (the best has {board.best_mean:.4f})"
        )
    return Target(value, text, reaching, len(means))


def run_arena(
    board: ArenaTable,
    plan: ArenaPlan,
    name: str,
    target: str = DEFAULT_TARGET,
    budget: int | None = None,
    progress: Callable[[ReplayResult], None] | None = None,
) -> ArenaRun:
    """Check the plan, replay every search ``plan.repeats`` times, compare them against its baseline."""
    searches = check_plan(board, plan)
    goal = target_of(board, target)
    if budget is not None and budget < 1:
        raise ArenaError(f"--budget must be >= 1 epochs, got {budget}")
    results = replays(board, searches, plan.repeats, plan.seed, progress)
    summary = compare(results, goal.value, budget, baseline=plan.baseline, seed=plan.seed)
    return ArenaRun(name, plan, board, goal, tuple(results), summary)


def _check_names(option: str, kind: str, given: tuple[str, ...], known: tuple[str, ...]) -> None:
    if not given:
        raise ArenaError(f"{option} names no {kind}; registered: {', '.join(known)}")
    for name in given:
        if name not in known:
            raise ArenaError(
                f"{option}: unknown {kind} {name!r}{did_you_mean(name, known)}; "
                f"registered: {', '.join(known)}"
            )
    if len(set(given)) != len(given):
        raise ArenaError(f"{option} names a {kind} twice: {', '.join(given)}")


def _check_baseline(plan: ArenaPlan, given: bool) -> None:
    """The baseline must be one of the plan's pairs; only the default, unnamed, may be left out (no tests)."""
    pairs = [search.pair for search in plan.searches()]
    if pair_name(plan.baseline) in pairs or (plan.baseline == BASELINE and not given):
        return
    raise ArenaError(
        f"--baseline {pair_name(plan.baseline)!r} is not one of the arena's pairs; it has {', '.join(pairs)}"
    )
