"""The phases after a search proper: confirmation runs and final runs, both reruns of its trials.

``run_search`` calls ``confirm_phase`` then ``final_phase`` once the search proper ends; each
builds its runs from the database (``nasfcn.search._confirming``, ``nasfcn.search._final``)
and trains them through the run's lifecycle like any trial of the search.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

from rich.console import Console

from nasfcn.confirm import ConfirmPolicy, policy_for
from nasfcn.genotype import Genotype
from nasfcn.search._budgeting import BudgetStart
from nasfcn.search._config import SearchConfig
from nasfcn.search._confirming import (
    ConfirmationPlan,
    Rerun,
    RerunSearch,
    confirmation_reruns,
    confirmation_seconds,
    plan_confirmation,
)
from nasfcn.search._deadline import BudgetKeeper, DeadlineScheduler, overrun_allowance_s
from nasfcn.search._final import final_phase_over, median_epoch_s, plan_final
from nasfcn.search._lifecycle import RunLifecycle, Trials, shippable
from nasfcn.search._scheduler import make_scheduler
from nasfcn.search._trainable import TrialSettings, data_key
from nasfcn.store import (
    Store,
    epochs_frame,
    finished_trials,
    interrupted_trials,
    next_trial_number,
    reusable_result,
)

if TYPE_CHECKING:
    from nasfcn.search._driver import _Prepared

log = logging.getLogger("nasfcn.search")


def confirm_phase(
    run: RunLifecycle,
    prepared: _Prepared,
    store: Store,
    sid: int,
    keeper: BudgetKeeper | None,
    console: Console,
) -> bool:
    """The search's confirmation phase (``nasfcn.search._confirming``); True when the user interrupted."""
    config = prepared.config
    policy = confirm_policy(config)
    if policy is None:
        return False
    rows = [*finished_trials(store, sid), *interrupted_trials(store, sid)]
    confirmation = plan_confirmation(rows, policy, config.seed)
    if not confirmation.runs:
        if confirmation.targets:
            console.print(f"confirmation ({policy.describe()}): every run finished before", markup=False)
        return False
    time_budget_s = None
    if config.time_budget_min is not None:
        time_budget_s = _confirmation_time(keeper, confirmation, prepared, store)
        if time_budget_s is None:
            console.print(
                f"confirmation ({policy.describe()}) skipped: the time budget leaves too little for "
                f"{len(confirmation.runs)} runs",
                markup=False,
            )
            return False
    console.print(confirmation.describe(), markup=False)
    log.info("%s", confirmation.describe())
    reruns = confirmation_reruns(confirmation, config.epochs)
    fifo = make_scheduler(replace(config, scheduler="fifo"))
    return _rerun(run, prepared, store, sid, reruns, (fifo, time_budget_s), "confirmation runs", console)


def _rerun(
    run: RunLifecycle,
    prepared: _Prepared,
    store: Store,
    sid: int,
    reruns: list[Rerun],
    schedule: tuple[Any, float | None],
    noun: str,
    console: Console,
) -> bool:
    """Train ``reruns`` (no optimizer) as trials of the search under ``schedule`` (a scheduler and
    Ray Tune's time limit); True when the user interrupted."""
    config = prepared.config
    folder = config.execution.run_folder(str(config.name))

    def build() -> Trials:
        lookup = None
        if config.execution.cache:
            data = data_key(prepared.data_options)

            def lookup(genotype: Genotype, recipe: dict[str, Any]) -> dict[str, Any] | None:
                found = lambda: reusable_result(store, genotype, config.data, recipe, data, sid)  # noqa: E731
                return store.retrying(found, "looking up a cached result")

        searcher = RerunSearch(reruns, prepared.recipe, next_trial_number(store, sid), lookup)
        return Trials(
            searcher=searcher,
            scheduler=schedule[0],
            settings=trial_settings(prepared),
            num_samples=len(reruns),
            epochs=max(int(rerun.overrides.get("epochs", config.epochs)) for rerun in reruns),
            time_budget_s=schedule[1],
            datasets=shippable({config.data: prepared.bundle}),
            noun=noun,
        )

    return run.run_trials(sid, str(config.name), folder, build, console)


def final_phase(
    run: RunLifecycle, prepared: _Prepared, store: Store, sid: int, keeper: BudgetKeeper, console: Console
) -> bool:
    """The search's final runs (``nasfcn.search._final``); True when the user interrupted."""
    if keeper.final_s <= 0:
        return False
    config = prepared.config
    cost = keeper.cost()
    seconds = keeper.phases_end - keeper.clock()
    rows = [*finished_trials(store, sid), *interrupted_trials(store, sid)]
    final = plan_final(
        rows,
        keeper.concurrency,
        seconds,
        config.seed,
        _epoch_seconds(store, str(config.name), config),
        cost.overhead_s if cost else 0.0,
    )
    if not final.runs:
        console.print(f"final runs skipped: {final.why_none}", markup=False)
        log.info("final runs skipped: %s", final.why_none)
        return False
    console.print(final.describe(), markup=False)
    log.info("%s", final.describe())
    # the deadline ends a run that would overrun after its last whole epoch; Ray's limit is the backstop
    deadline = DeadlineScheduler(keeper.phases_end, keeper.clock)
    schedule = (deadline, seconds + overrun_allowance_s(keeper.seconds))
    return _rerun(run, prepared, store, sid, final.runs, schedule, "final runs", console)


def _epoch_seconds(
    store: Store, name: str, config: SearchConfig
) -> Callable[[Mapping[str, Any]], float | None]:
    """A trial's median full-size epoch seconds, from its recorded epochs (``plan_final``'s input)."""
    frame = epochs_frame(store, name, columns=("epoch", "seconds"))
    reduced = config.asha_grace_period if config.fidelity_schedule.reduced else 0

    def seconds(row: Mapping[str, Any]) -> float | None:
        own = frame[(frame["number"] == int(row["number"])) & (frame["epoch"] > reduced)]
        return median_epoch_s(own["seconds"].tolist())

    return seconds


def _confirmation_time(
    keeper: BudgetKeeper | None, confirmation: ConfirmationPlan, prepared: _Prepared, store: Store
) -> float | None:
    """Seconds the budget leaves the confirmation runs, or None when they would not fit.

    The cost is this driver's measure; a resume that trained nothing before its confirmation
    (--trials reached) has none, and then plans from the targets' own recorded epochs, the
    slowest of them (as ``final_phase`` plans from each run's), with no start-up measured.
    """
    if keeper is None:
        return None
    cost = keeper.cost()
    if cost is not None:
        epoch_s, overhead_s = cost.epoch_s, cost.overhead_s
    else:
        recorded = _epoch_seconds(store, str(prepared.config.name), prepared.config)
        measured = [s for s in map(recorded, confirmation.targets) if s is not None]
        if not measured:
            return None
        epoch_s, overhead_s = max(measured), 0.0
    left = keeper.phases_end - keeper.clock() - keeper.final_s
    trained = [int(row.get("epochs_trained") or 0) for row in confirmation.targets]
    epochs = max(trained) or prepared.config.epochs
    needed = confirmation_seconds(len(confirmation.runs), keeper.concurrency, epochs, epoch_s, overhead_s)
    return left if needed <= left else None


def final_seconds(config: SearchConfig, store: Store, sid: int, budget: BudgetStart) -> float:
    """Seconds this driver keeps for the final runs: ``--final-share`` of the whole budget (at most
    what is left of it); none once the final phase is over (a final run finished and none is
    left interrupted: a resume after the final phase). A resume after a driver was stopped
    between two final runs keeps the time for the one left."""
    if config.final_share <= 0:
        return 0.0
    if final_phase_over([*finished_trials(store, sid), *interrupted_trials(store, sid)]):
        return 0.0
    return min(config.final_share * budget.total_s, budget.seconds)


def confirm_policy(config: SearchConfig) -> ConfirmPolicy | None:
    """The confirmation a search runs: what --confirm-top/--confirm-seeds give, else the defaults
    with --time-budget unless final runs take the end of the budget (they are what export picks,
    and a confirmation reserve beside theirs left a 15-minute search proper 4 trials)."""
    default = config.time_budget_min is not None and not config.final_share
    return policy_for(config.confirm_top, config.confirm_seeds, budgeted=default)


def confirm_runs(config: SearchConfig) -> int:
    """The confirmation runs a budgeted search keeps time for (all of them, as if none ran yet)."""
    policy = confirm_policy(config)
    return policy.runs if policy is not None else 0


def trial_settings(prepared: _Prepared) -> TrialSettings:
    """What every trial of the search shares (its confirmation runs too)."""
    config, execution = prepared.config, prepared.config.execution
    return TrialSettings(
        data=config.data,
        data_options=prepared.data_options,
        recipe=prepared.recipe,
        latency_input=config.latency_input or config.image_size,
        max_params=config.max_params,
        max_flops=config.max_flops,
        max_latency_ms=config.max_latency_ms,
        device=execution.trial_device(),
        threads=execution.threads,
        fidelity=asdict(config.fidelity_schedule) if config.fidelity_schedule.reduced else None,
    )
