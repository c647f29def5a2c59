"""When trials stop: ASHA on val mIoU per epoch, or FIFO (every trial runs all its epochs).

A resumed ASHA search gets a new scheduler. With empty rungs it would let the first
trials after the resume through every rung, whatever they score, so an interruption
would cost epochs. The rungs are therefore refilled from the stored epoch histories of
the finished trials, through the scheduler's own trial callbacks: afterwards it holds
what it would hold had the search never stopped.

With ``--fidelity resolution=R,subset=F`` the grace period's epochs train smaller and on
fewer images, so an epoch no longer measures what a trial has spent: ASHA's time attribute
is then ``budget``, the full-fidelity epochs a trial has spent (``Fidelity.budget``), and its
grace period and rungs are in those units. Every trial follows the same schedule, so a rung
compares like with like. The first full epoch after the cheap grace rung passes several of
Ray's geometric milestones at once; Ray records a trial at the highest of them, and
``stop_last_trials=False`` keeps it from filling the skipped ones at later epochs (which
would stop trials at nearly every epoch). ``nasfcn.search._budget.decision_epochs`` says where decisions fall.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from nasfcn import catalogue
from nasfcn.recipe import Fidelity
from nasfcn.registry import Registry
from nasfcn.search._config import SearchConfig

METRIC, TIME_ATTR, BUDGET_ATTR = "val_miou", "training_iteration", "budget"
log = logging.getLogger("nasfcn.search")


@dataclass(frozen=True)
class _StoredTrial:
    """Stands in for a finished trial of an earlier run: the scheduler only needs its id."""

    trial_id: str


#: (config, histories) -> a Ray Tune scheduler, by the catalogue's scheduler name.
SchedulerFactory = Callable[[SearchConfig, Sequence[Sequence[float]]], Any]
SCHEDULER_FACTORIES: Registry[SchedulerFactory] = Registry("trial scheduler", catalogue.SCHEDULERS)


def make_scheduler(config: SearchConfig, histories: Sequence[Sequence[float]] = ()) -> Any:
    """The search's scheduler; ``histories`` (val mIoU per epoch of each finished trial) refill ASHA."""
    return SCHEDULER_FACTORIES.get(config.scheduler)(config, histories)


@SCHEDULER_FACTORIES.register("fifo")
def _fifo(config: SearchConfig, histories: Sequence[Sequence[float]]) -> Any:
    from ray.tune.schedulers import FIFOScheduler

    return FIFOScheduler()


@SCHEDULER_FACTORIES.register("asha")
def _asha(config: SearchConfig, histories: Sequence[Sequence[float]]) -> Any:
    from ray.tune.schedulers import ASHAScheduler

    fidelity = config.fidelity_schedule
    reduced = fidelity.reduced
    # In budget units max_t and the grace period are floats: Ray annotates int, computes in floats.
    units: dict[str, Any] = {
        "time_attr": BUDGET_ATTR if reduced else TIME_ATTR,
        "max_t": fidelity.budget(config.epochs) if reduced else config.epochs,
        "grace_period": fidelity.budget(config.asha_grace_period) if reduced else config.asha_grace_period,
    }
    scheduler = ASHAScheduler(
        metric=METRIC,
        mode="max",
        reduction_factor=config.reduction_factor,
        stop_last_trials=not reduced,
        **units,
    )
    replayed = replay(scheduler, histories, fidelity)
    if replayed:
        log.info("ASHA's rungs refilled from the epochs of %d finished trials", replayed)
    return scheduler


def replay(scheduler: Any, histories: Sequence[Sequence[float]], fidelity: Fidelity | None = None) -> int:
    """Report stored epochs to ``scheduler`` as they were reported live; returns the trials replayed."""
    fidelity = fidelity or Fidelity()
    replayed = 0
    for index, history in enumerate(histories):
        if not history:
            continue  # cached or rejected: never trained here, never reached a rung
        trial = _StoredTrial(f"stored-{index}")
        scheduler.on_trial_add(None, trial)
        result: dict[str, float] = {}
        for epoch, miou in enumerate(history, start=1):
            result = {TIME_ATTR: epoch, BUDGET_ATTR: fidelity.budget(epoch), METRIC: miou}
            scheduler.on_trial_result(None, trial, result)  # its decision was taken then
        scheduler.on_trial_complete(None, trial, result)
        replayed += 1
    return replayed
