"""A search that spends a time budget: measure, plan, re-plan, stop at the deadline.

``BudgetKeeper`` holds the clock and the plan (``nasfcn.search._budget``); two thin
wrappers let Ray Tune obey it:

* ``BudgetSearch`` wraps the strategy's searcher. The first trials start before any plan
  (the measuring phase: they are real trials of the search, trained with the epoch cap's
  recipe); every later trial trains the plan's epochs (its recipe's ``epochs``). A trial
  starts only while the plan holds more trials and the time left covers its overhead and
  grace period; when no more can start, the searcher finishes.
* ``BudgetScheduler`` wraps the scheduler. It builds ASHA from the first plan (max epochs,
  grace period, factor), refilled with the epochs trials reported before, and stops a
  running trial after an epoch once the next one would end past the deadline: it ends as
  ``stopped_early`` with every epoch it trained kept (never ``failed``).

The keeper re-plans when a trial finishes, with the median cost measured so far.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher

from nasfcn.recipe import Fidelity
from nasfcn.search._budget import Cost, Plan, median_cost, plan, replan
from nasfcn.search._trainable import STATUS_KEY

log = logging.getLogger("nasfcn.search")
START, WAIT, DONE = "start", "wait", "done"
#: Seconds kept back at the end of a budget (at most a tenth of it) for Ray Tune to stop the
#: last trials and write its state: 3-6 s on the busy 2-core test machine.
CLOSING_S = 5.0
#: The most of a budget the confirmation runs (``nasfcn.confirm``) may be given: beyond it the
#: search proper would have too few candidates to confirm; the runs are then not planned.
CONFIRM_SHARE = 1 / 3


def overrun_allowance_s(seconds: float) -> float:
    """The most a budget of ``seconds`` may be overrun: Ray Tune's own time limit is the budget
    plus this (30 s, or a tenth of longer budgets), a backstop the keeper's deadline comes before;
    the rest of it covers Ray's stop and the driver's settling on a loaded machine."""
    return max(30.0, 0.1 * seconds)


class BudgetKeeper:
    """The budget's clock, the measured cost and the current plan (driver side, one per search)."""

    def __init__(
        self,
        seconds: float,
        concurrency: int,
        epoch_cap: int,
        *,
        trials_cap: int | None = None,
        grace_period: int | None = None,
        reduction_factor: int = 2,
        asha: bool = True,
        shape: Plan | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_plan: Callable[[Plan, str], None] | None = None,
        fidelity: Fidelity | None = None,
        confirm_runs: int = 0,
        final_s: float = 0.0,
    ) -> None:
        """``seconds``: the budget this driver may spend; ``shape``: a stored plan whose epochs
        and rungs a resumed search keeps; ``on_plan(plan, why)`` hears every new plan;
        ``confirm_runs``: full trials to keep time for after the search proper (``reserved_s``);
        ``final_s``: seconds kept at the end for the final runs (``nasfcn.search._final``)."""
        self.seconds, self.concurrency, self.epoch_cap = seconds, concurrency, epoch_cap
        self.trials_cap, self.grace_period = trials_cap, grace_period
        self.reduction_factor, self.asha, self.shape = reduction_factor, asha, shape
        self.clock, self.on_plan = clock, on_plan
        self.fidelity = fidelity  # --fidelity: the grace period's epochs are cheaper
        self.began = clock()
        self.plan: Plan | None = None
        self.plans = 0
        self._epoch_s: list[float] = []
        self._overhead_s: list[float] = []
        self._low_epoch_s: list[float] = []  # reduced-fidelity epochs, apart from full ones
        self._started_at: dict[str, float] = {}
        self._running: dict[str, int] = {}  # trial id -> epochs trained
        self.started = 0
        self.confirm_runs = confirm_runs
        self.final_s = final_s
        self._reserve_epochs: int | None = shape.max_epochs if shape else None

    # Ray pickles the searcher and scheduler with its experiment state: the database stays here.
    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "on_plan"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.on_plan = None

    @property
    def deadline(self) -> float:
        """When the search proper's last epoch must have ended: the budget's end less the closing
        reserve and the time kept for the confirmation and the final runs."""
        return self.phases_end - self.reserved_s() - self.final_s

    @property
    def phases_end(self) -> float:
        """When the last run of any phase must have ended: the budget's end less the closing reserve."""
        return self.began + self.seconds - self.closing_s

    @property
    def closing_s(self) -> float:
        return min(CLOSING_S, 0.1 * self.seconds)

    def reserved_s(self, epochs: int | None = None) -> float:
        """Seconds kept for the confirmation runs: whole rounds of full trials of the plan's epochs
        at the measured cost; 0 before a measure, without runs, or over ``CONFIRM_SHARE``."""
        needed = self._needed(epochs or self._reserve_epochs)
        return needed if needed <= CONFIRM_SHARE * self.seconds else 0.0

    def _needed(self, epochs: int | None) -> float:
        cost = median_cost(self._epoch_s, self._overhead_s)
        if not self.confirm_runs or cost is None or epochs is None:
            return 0.0
        rounds = -(-self.confirm_runs // max(1, self.concurrency))
        return rounds * (cost.overhead_s + epochs * cost.epoch_s)

    def seconds_used(self) -> float:
        return self.clock() - self.began

    def seconds_left(self) -> float:
        return max(0.0, self.deadline - self.clock())

    def cost(self) -> Cost | None:
        return median_cost(self._epoch_s, self._overhead_s, self._low_epoch_s)

    # -- what the trials did -------------------------------------------------------------
    def trial_started(self, trial_id: str) -> None:
        self._started_at[trial_id] = self.clock()
        self._running[trial_id] = 0
        self.started += 1

    def epoch_done(self, trial_id: str, epoch: int, seconds: float, reduced: bool = False) -> None:
        """A trial reported ``epoch``, which took ``seconds`` (at ``reduced`` fidelity or full size);
        the first plan follows the first full-size epoch."""
        if epoch == 1 and trial_id in self._started_at:
            self._overhead_s.append(max(0.0, self.clock() - self._started_at[trial_id] - seconds))
        (self._low_epoch_s if reduced else self._epoch_s).append(seconds)
        self._running[trial_id] = epoch
        if self.plan is None and not reduced:
            self._refresh(f"measured the first {'full-size ' if self._low_epoch_s else ''}epoch")

    def trial_finished(self, trial_id: str) -> None:
        if self._running.pop(trial_id, None) is not None:
            self._refresh("a trial finished")

    # -- what the search may do ----------------------------------------------------------
    def may_start(self) -> str:
        """``start`` a trial now, ``wait`` (running trials may change the plan), or ``done``."""
        if self.plan is None:
            return START if self.started < self.concurrency or not self._running else WAIT
        if self.plan.trials > self.started and self._grace_fits(self.plan):
            return START
        return WAIT if self._running and self._grace_fits(self.plan) else DONE

    def out_of_time(self) -> bool:
        """The next epoch would end after the deadline (before any measure: the deadline has passed)."""
        cost = self.cost()
        return self.clock() + (cost.epoch_s if cost else 0.0) > self.deadline

    def _grace_fits(self, current: Plan) -> bool:
        cost = self.cost() or Cost(current.epoch_s, current.overhead_s, current.low_epoch_s)
        return current.grace_s(cost) <= self.seconds_left()

    def _refresh(self, why: str) -> None:
        cost = self.cost()
        if cost is None:
            return
        base = self.plan or self.shape
        if base is None:
            base = self._first_plan(cost)
        left = self.seconds_left()
        running = list(self._running.values())
        new = replan(base, left, self.concurrency, cost, self.started, running, self.trials_cap)
        changed = self.plan is None or new.trials != self.plan.trials
        self.plan = new
        if changed:
            self.plans += 1
            if self.on_plan is not None:
                self.on_plan(new, why)

    def _first_plan(self, cost: Cost) -> Plan:
        """The first plan; with confirmation runs, made again for the time their reserve for its
        epochs leaves (the reserve depends on the epochs, the epochs on the time)."""

        def planned(seconds_left: float) -> Plan:
            return plan(
                seconds_left,
                self.concurrency,
                cost,
                self.epoch_cap,
                trials_cap=self.trials_cap,
                grace_period=self.grace_period,
                reduction_factor=self.reduction_factor,
                asha=self.asha,
                fidelity=self.fidelity,
            )

        left = self.seconds_left()
        epochs = planned(left).max_epochs
        if not self.confirm_runs:
            return planned(left)
        for _ in range(4):  # the epochs whose reserve leaves a plan of the same epochs
            shorter = planned(left - min(self._needed(epochs), CONFIRM_SHARE * self.seconds)).max_epochs
            if shorter == epochs:
                break
            epochs = shorter
        self._reserve_epochs = epochs if self.reserved_s(epochs) else None
        return planned(self.seconds_left())

    def confirm_text(self) -> str:
        """What the plan keeps for the confirmation runs, for the plan line."""
        if not self.confirm_runs or self.cost() is None:
            return ""
        reserved = self.reserved_s()
        if reserved:
            return f"; then {self.confirm_runs} confirmation runs ({_clock(reserved)} kept)"
        return f"; no time for {self.confirm_runs} confirmation runs (over {CONFIRM_SHARE:.0%} of the budget)"

    def line(self) -> str:
        """The progress display's budget line."""
        used = self.seconds_used()
        left = max(0.0, self.seconds - used)
        text = f"budget {_clock(self.seconds)}: used {_clock(used)}, left {_clock(left)}"
        if self.plan is None:
            return f"{text}; measuring the first epochs ({self.started} trials started)"
        cost = self.cost() or Cost(self.plan.epoch_s)
        return (
            f"{text}; plan {self.plan.describe()}, {cost.epoch_s:.1f} s/epoch, {self.plans} plans"
            + self.confirm_text()
            + (f"; then final runs ({_clock(self.final_s)} kept)" if self.final_s > 0 else "")
        )


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60:d}:{seconds % 60:02d}"


class BudgetSearch(Searcher):
    """The strategy's searcher, started only while the budget's plan allows a trial."""

    def __init__(self, inner: Any, keeper: BudgetKeeper) -> None:
        super().__init__(metric=inner.metric, mode=inner.mode)
        self.inner, self.keeper = inner, keeper

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return bool(self.inner.set_search_properties(metric, mode, config, **spec))

    def suggest(self, trial_id: str) -> dict[Any, Any] | None:
        decision = self.keeper.may_start()
        if decision == DONE:
            return Searcher.FINISHED  # type: ignore[return-value]  # Ray's own sentinel
        if decision == WAIT:
            return None
        config = self.inner.suggest(trial_id)
        if isinstance(config, dict) and self.keeper.plan is not None:
            overrides = {**(config.get("recipe_overrides") or {}), "epochs": self.keeper.plan.max_epochs}
            config = {**config, "recipe_overrides": overrides}
            if self.keeper.plan.low_epochs:  # --fidelity: the plan's grace period is the reduced part
                config["low_epochs"] = self.keeper.plan.low_epochs
        return config

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.inner.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self.inner.on_trial_complete(trial_id, result, error=error)

    def save(self, checkpoint_path: str) -> None:
        self.inner.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.inner.restore(checkpoint_path)


#: plan, histories (val mIoU per epoch of finished trials) -> the scheduler for that plan
SchedulerBuilder = Callable[[Plan, Sequence[Sequence[float]]], Any]


class BudgetScheduler(FIFOScheduler):
    """The search's scheduler built from the first plan, and the deadline for running trials."""

    def __init__(
        self, build: SchedulerBuilder, keeper: BudgetKeeper, histories: Sequence[Sequence[float]] = ()
    ):
        super().__init__()
        self._metric, self._mode = "val_miou", "max"
        self.build, self.keeper = build, keeper
        self.inner: Any = None
        self._histories = [list(h) for h in histories]  # finished trials' val mIoU per epoch
        self._running: dict[str, tuple[Any, list[dict[str, Any]]]] = {}

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return True

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("build", "_running")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._running = {}

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        self.keeper.trial_started(trial.trial_id)
        self._running[trial.trial_id] = (trial, [])
        if self.inner is not None:
            self.inner.on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if result.get(STATUS_KEY) == "running" and "epoch" in result:
            self.keeper.epoch_done(
                trial.trial_id,
                int(result["epoch"]),
                float(result.get("seconds") or 0.0),
                bool(result.get("reduced_fidelity")),
            )
        self._install()  # replays the results before this one
        if trial.trial_id in self._running:
            self._running[trial.trial_id][1].append(result)
        if result.get(STATUS_KEY) == "running" and self.keeper.out_of_time():
            log.info("trial %s stopped at the deadline after epoch %s", trial.trial_id, result.get("epoch"))
            return TrialScheduler.STOP
        if self.inner is None:
            return TrialScheduler.CONTINUE
        return str(self.inner.on_trial_result(tune_controller, trial, result))

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        self._forget(trial)
        if self.inner is not None:
            self.inner.on_trial_complete(tune_controller, trial, result)
        self.keeper.trial_finished(trial.trial_id)

    def on_trial_error(self, tune_controller: Any, trial: Any) -> None:
        self.on_trial_remove(tune_controller, trial)

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        if self._running.pop(trial.trial_id, None) is not None and self.inner is not None:
            self.inner.on_trial_remove(tune_controller, trial)
        self.keeper.trial_finished(trial.trial_id)

    def _forget(self, trial: Any) -> None:
        _, results = self._running.pop(trial.trial_id, (None, []))
        if self.inner is None:
            self._histories.append([float(r["val_miou"]) for r in results if "val_miou" in r])

    def _install(self) -> None:
        """Once there is a plan: its scheduler, holding what earlier and running trials reported."""
        if self.inner is not None or self.keeper.plan is None:
            return
        self.inner = self.build(self.keeper.plan, self._histories)
        for trial, results in self._running.values():
            self.inner.on_trial_add(None, trial)
            for result in results:
                self.inner.on_trial_result(None, trial, result)  # decided then: none was taken

    def debug_string(self) -> str:
        return f"time budget: {self.keeper.line()}"


class DeadlineScheduler(FIFOScheduler):
    """FIFO up to a deadline: a run whose next epoch would end after it stops after this one.

    The phases after the search proper (final runs) train to the end of the budget; a run the
    deadline stops keeps its epochs and best checkpoint (``stopped_early``), where Ray Tune's
    own time limit, the backstop, would leave it ``interrupted``."""

    def __init__(self, deadline: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._metric, self._mode = "val_miou", "max"
        self.deadline, self.clock = deadline, clock

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return True

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if result.get(STATUS_KEY) == "running" and "epoch" in result:
            next_end = self.clock() + float(result.get("seconds") or 0.0)
            if next_end > self.deadline:
                log.info("trial %s stopped at the deadline after epoch %s", trial.trial_id, result["epoch"])
                return TrialScheduler.STOP
        return TrialScheduler.CONTINUE
