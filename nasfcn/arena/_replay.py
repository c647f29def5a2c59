"""The replay engine: a search's own searcher and scheduler, run against a table on a simulated clock.

``nasfcn search`` hands its searcher and scheduler to Ray Tune, which asks the searcher for
a configuration whenever a worker is free, reports every epoch to the scheduler (continue or
stop) and then to the searcher, and tells both when a trial ends. The arena makes the same
calls in the same order from an in-process event loop: each trial's epochs are looked up in
the table (for one of its seeds, drawn per trial) and end on a simulated clock of C workers
after the table's recorded seconds, so ASHA's rungs fill asynchronously, as they do live.
Nothing is re-implemented: the objects are built by the search's own registrations
(``SEARCHERS``, ``make_scheduler``) from a ``SearchConfig``, so a new strategy replays as is.

With a confirmation policy (``ArenaSearch.confirm``) the search then ends as ``nasfcn search
--confirm-top K --confirm-seeds S`` does: ``nasfcn.confirm`` picks the top K completed trials,
each network trains S more full runs on the same C workers and clock (FIFO, no searcher told),
each with another table seed than its trial drew (the next ones, cyclically, as the search
uses ``--seed`` + 1 .. + S), and the export becomes the best pooled mean (``nasfcn.confirm.pooled``).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from ray.tune.schedulers import TrialScheduler
from ray.tune.search import Searcher

from nasfcn.confirm import ConfirmPolicy, confirmation_runs, pooled
from nasfcn.errors import NasfcnError
from nasfcn.genotype import Genotype
from nasfcn.search import SEARCHERS, SearchConfig, SearchConfigError, SearcherInputs, make_scheduler
from nasfcn.space import SearchSpace, parse_space, space_hash
from nasfcn.table import Table, TableError

#: What a trial reports per epoch (Ray Tune's iteration counter, as the search's ASHA reads it).
TIME_ATTR = "training_iteration"
#: Metrics a table gives per epoch; the cost metrics are the architecture's (``Table.cost``).
EPOCH_METRICS = ("val_miou", "val_pixel_accuracy")
COST_METRICS = ("params", "flops", "latency_ms", "peak_memory_mb")
#: The recipe values a searcher is told as the defaults of searchable training knobs.
TRAIN_DEFAULTS = ("lr", "weight_decay", "batch_size", "optimizer")
#: A replay's trial columns before ``confirms``.
TRIAL_COLUMNS = ("number", "arch_id", "table_seed", "epochs", "started", "ended", "best", "status")


class ArenaError(NasfcnError, ValueError):
    """A table, a strategy or a setting the arena cannot replay; the message says which and why."""


@dataclass(frozen=True)
class ArenaSearch:
    """One strategy x scheduler as ``nasfcn search`` would run it (its options, same names)."""

    strategy: str
    scheduler: str
    trials: int
    concurrency: int = 1
    objectives: tuple[str, ...] = ("miou",)  # the first maximized val mIoU, as in the search
    grace_period: int | None = None  # ASHA: None is the search's default (a quarter of the epochs)
    reduction_factor: int = 2
    confirm: ConfirmPolicy | None = None  # None: no confirmation (the arena's default)

    @property
    def pair(self) -> str:
        return pair_name((self.strategy, self.scheduler))


def pair_name(pair: tuple[str, str]) -> str:
    """``("tpe", "asha")`` -> ``"tpe + asha"``, as every report writes a pair."""
    return " + ".join(pair)


@dataclass(frozen=True)
class Pick:
    """A network a search would export, what the search saw of it and what it truly is."""

    arch_id: str
    observed: float  # its best single run (unconfirmed) or its pooled mean over runs (confirmed)
    true_mean: float  # its mean over the table's seeds
    regret: float  # the table's best mean minus ``true_mean``

    @property
    def winners_curse(self) -> float:
        """How much what the search saw overstates the truth."""
        return self.observed - self.true_mean


@dataclass(frozen=True)
class Confirmation:
    """What confirming the top K over S extra seeds did at the end of one replay."""

    policy: ConfirmPolicy
    targets: tuple[int, ...]  # trial numbers confirmed, best single run first
    unconfirmed: Pick  # the best single run: the export without confirmation
    confirmed: Pick  # the best pooled mean among the confirmed (``unconfirmed`` when none was)
    epochs: int  # epochs the confirmation runs trained
    seconds: float  # simulated wall time they added after the search proper


@dataclass(frozen=True)
class ReplayResult:
    """One replayed search: its trials and, after every finished epoch, what it would export."""

    search: ArenaSearch
    seed: int
    #: one row per trial: number, arch_id, table_seed, epochs, started, ended (simulated s), best,
    #: status, confirms (the number of the trial a confirmation run re-seeds; NA for the search's)
    trials: pd.DataFrame
    #: one row per finished epoch, in simulated-time order: time, epochs (trained so far), trial,
    #: incumbent (arch_id), observed (its best single-run value so far), true_mean, regret. With
    #: confirmation the incumbent stays the best single run until the last confirmation epoch,
    #: whose row holds the confirmed pick (observed: its pooled mean).
    trace: pd.DataFrame
    confirmation: Confirmation | None = None  # None: not asked for, or no epoch trained to confirm

    @property
    def final_regret(self) -> float:
        return float(self.trace["regret"].iloc[-1]) if len(self.trace) else math.nan


@dataclass
class _SimTrial:
    """What Ray Tune's schedulers read of a trial: its id and status (FIFO's queue), nothing else."""

    trial_id: str
    number: int
    arch: int  # row of the architecture in the table's arrays
    seed: int  # the table seed whose run this trial replays
    row: int  # that seed's position in the table's arrays
    status: str = "PENDING"  # Ray Tune's Trial.PENDING / RUNNING / TERMINATED / ERROR
    epoch: int = 0  # epochs reported so far
    started: float = math.nan
    ended: float = math.nan
    best: float = -math.inf
    last_result: dict[str, Any] = field(default_factory=dict)


class _Controller:
    """Stands in for Ray Tune's TuneController: the schedulers here only list its trials."""

    def __init__(self) -> None:
        self.trials: list[_SimTrial] = []

    def get_trials(self) -> list[_SimTrial]:
        return self.trials


class ArenaTable:
    """A table ready for replays: its space rebuilt from the stored YAML and checked, lookups as arrays."""

    def __init__(self, table: Table, space: SearchSpace | None = None) -> None:
        self.table = table
        self.space = space if space is not None else _stored_space(table)
        try:
            table.check_space(self.space)
        except TableError as err:
            raise ArenaError(f"the arena replays a search over the table's own space: {err}") from err
        self.archs = table.archs()
        self.index = {arch: i for i, arch in enumerate(self.archs)}
        self.values = {name: np.asarray(table.values(name)) for name in (*EPOCH_METRICS, "seconds")}
        self.means = np.asarray(table.means(), dtype=np.float64)
        if np.all(np.isnan(self.means)):
            raise ArenaError(f"{table.source}: no architecture has a final-epoch val_miou to replay")
        self.best_mean = float(np.nanmax(self.means))
        self._costs: dict[str, np.ndarray] = {}
        self._keys: dict[int, str] = {}

    def target(self, fraction: float = 0.01) -> float:
        """The mean val mIoU an architecture needs to be among the top ``fraction`` (at least one)."""
        if not 0 < fraction <= 1:
            raise ArenaError(f"target fraction must be in (0, 1], got {fraction}")
        ranked = np.sort(self.means[~np.isnan(self.means)])[::-1]
        return float(ranked[max(1, math.ceil(fraction * len(ranked))) - 1])

    def cost(self, metric: str) -> np.ndarray:
        """``metric`` (params, flops, ...) of every architecture, in table order."""
        if metric not in self._costs:
            self._costs[metric] = np.asarray(
                [getattr(self.table.cost(arch), metric) for arch in self.archs], dtype=np.float64
            )
        return self._costs[metric]

    def config(self, search: ArenaSearch, seed: int) -> SearchConfig:
        """The ``SearchConfig`` ``nasfcn search`` would build: its checks, its ASHA settings."""
        problems = [] if search.concurrency >= 1 else [f"concurrency must be >= 1, got {search.concurrency}"]
        reported = {"miou": "val_miou", "pixel_accuracy": "val_pixel_accuracy"}
        unknown = [o for o in search.objectives if reported.get(o, o) not in (*EPOCH_METRICS, *COST_METRICS)]
        if unknown:
            allowed = ", ".join(("miou", "pixel_accuracy", *COST_METRICS))
            problems.append(f"objective {', '.join(unknown)} is not in a table; valid: {allowed}")
        problems.extend(self._confirm_problems(search.confirm))
        try:
            config = SearchConfig(
                space=self.table.source,
                epochs=self.table.epochs,
                trials=search.trials,
                strategy=search.strategy,
                scheduler=search.scheduler,
                objectives=search.objectives,
                seed=seed,
                grace_period=search.grace_period,
                reduction_factor=search.reduction_factor,
            )
        except SearchConfigError as err:
            problems.extend(line.strip() for line in str(err).splitlines()[1:])
        if problems:
            raise ArenaError(f"cannot replay {search.pair} on {self.table.source}: " + "; ".join(problems))
        return config

    def _confirm_problems(self, policy: ConfirmPolicy | None) -> list[str]:
        """A confirmation run needs a table seed its trial did not draw: at most seeds - 1 of them."""
        if policy is None:
            return []
        problems = [
            f"{option} must be >= 1, got {value}" for option, value in _confirm_options(policy) if value < 1
        ]
        seeds = len(self.table.seeds)
        if policy.seeds > seeds - 1:
            problems.append(
                f"--confirm-seeds {policy.seeds}: each confirmation run needs a table seed its trial did not "
                f"draw, and the table has {seeds} seeds, so at most {seeds - 1}"
            )
        return problems

    def trial_key(self, arch: int) -> str:
        """The network + knobs key ``nasfcn.confirm`` picks one trial of (the table's knobs are fixed)."""
        if arch not in self._keys:
            self._keys[arch] = self.table.genotype(self.archs[arch]).trial_key
        return self._keys[arch]


def _confirm_options(policy: ConfirmPolicy) -> tuple[tuple[str, int], ...]:
    return (("--confirm-top", policy.top), ("--confirm-seeds", policy.seeds))


def replay(arena: ArenaTable | Table, search: ArenaSearch, seed: int) -> ReplayResult:
    """Replay one search of ``search.trials`` trials against the table; reproducible from ``seed``."""
    board = arena if isinstance(arena, ArenaTable) else ArenaTable(arena)
    return _Replay(board, search, seed).run()


def replays(
    arena: ArenaTable | Table,
    searches: Sequence[ArenaSearch],
    repeats: int,
    seed: int = 0,
    progress: Callable[[ReplayResult], None] | None = None,
) -> list[ReplayResult]:
    """``repeats`` replays of every search; repeat r uses seed ``seed + r`` for every search, so
    repeats pair up across strategies (the same table seeds drawn for the same trial numbers).
    ``progress`` is called with each replay as it finishes."""
    if repeats < 1:
        raise ArenaError(f"repeats must be >= 1, got {repeats}")
    board = arena if isinstance(arena, ArenaTable) else ArenaTable(arena)
    results = []
    for search in searches:
        for r in range(repeats):
            results.append(replay(board, search, seed + r))
            if progress is not None:
                progress(results[-1])
    return results


class _Replay:
    """One search's event loop: a heap of epoch ends on C simulated workers."""

    def __init__(self, board: ArenaTable, search: ArenaSearch, seed: int) -> None:
        self.board, self.search, self.seed = board, search, seed
        config = board.config(search, seed)
        self.metrics = config.metrics
        recipe = board.table.facts.get("recipe") or {}
        self.searcher = SEARCHERS.get(search.strategy)(
            SearcherInputs(
                space=board.space,
                metrics=config.metrics,
                modes=config.modes,
                seed=seed,
                first_number=0,
                finished=[],
                replays=[],
                cache=None,
                train_defaults={k: recipe[k] for k in TRAIN_DEFAULTS if k in recipe},
            )
        )
        self.scheduler = make_scheduler(config)
        self.controller = _Controller()
        self.rng = np.random.default_rng(seed)
        self.events: list[tuple[float, int, int]] = []  # (ends at, sequence, trial number)
        self.sequence = 0
        self.running = 0
        self.exhausted = False
        self.trace: list[tuple[float, int, int, int, float]] = []
        self.incumbent, self.observed = -1, -math.inf
        self.confirms: dict[int, int] = {}  # confirmation run's number -> the trial it re-seeds
        self.queue: list[_SimTrial] = []  # confirmation runs waiting for a worker
        self.clock = 0.0  # when the last event happened

    def run(self) -> ReplayResult:
        self._fill(0.0)
        self._drain()
        policy = self.search.confirm
        confirmation = None if policy is None or not self.trace else self._confirm(policy)
        trials, trace = self._trials_frame(), self._trace_frame()
        return ReplayResult(self.search, self.seed, trials, trace, confirmation)

    def _drain(self) -> None:
        while self.events:
            now, _, number = heapq.heappop(self.events)
            self.clock = now
            trial = self.controller.trials[number]
            if number in self.confirms:
                self._confirm_epoch_done(trial, now)
            else:
                self._epoch_done(trial, now)
            self._fill(now)

    # -- Ray Tune's side: new trials while a worker is free ---------------------------------------
    def _fill(self, now: float) -> None:
        if self.confirms:
            self._fill_confirmation(now)
            return
        while self.running < self.search.concurrency:
            if not self.exhausted and len(self.controller.trials) < self.search.trials:
                self._add_trial()
            chosen = self.scheduler.choose_trial_to_run(self.controller)
            if chosen is None:
                return
            chosen.status, chosen.started = "RUNNING", now
            self.running += 1
            self._schedule(chosen, now)

    def _add_trial(self) -> None:
        number = len(self.controller.trials)
        config = self.searcher.suggest(f"t{number}")
        if config is None:
            return  # the searcher waits (Ray Tune asks again later; here: at the next free worker)
        if config == Searcher.FINISHED:
            self.exhausted = True  # nothing more to propose: a grid walked its space
            return
        genotype = Genotype.from_json(config["genotype"])
        arch = self.board.index.get(genotype.arch_id)
        if arch is None:
            raise ArenaError(
                f"{self.board.table.source}: {self.search.strategy} proposed architecture "
                f"{genotype.arch_id} ({genotype.to_json()}), which the table does not hold"
            )
        row = int(self.rng.integers(len(self.board.table.seeds)))
        trial = _SimTrial(f"t{number}", number, arch, self.board.table.seeds[row], row)
        self.controller.trials.append(trial)
        self.scheduler.on_trial_add(self.controller, trial)

    def _schedule(self, trial: _SimTrial, now: float) -> None:
        seconds = self.board.values["seconds"][trial.arch, trial.row, trial.epoch]
        self.sequence += 1
        ends = now + (0.0 if math.isnan(seconds) else float(seconds))
        heapq.heappush(self.events, (ends, self.sequence, trial.number))

    # -- a trial's epoch ended: the calls Ray Tune's controller makes -------------------------------
    def _epoch_done(self, trial: _SimTrial, now: float) -> None:
        row = trial.row
        value = float(self.board.values["val_miou"][trial.arch, row, trial.epoch])
        if math.isnan(value):  # the run failed here in the table: the trial errors
            self.scheduler.on_trial_error(self.controller, trial)
            self.searcher.on_trial_complete(trial.trial_id, error=True)
            self._end(trial, "ERROR", now)
            return
        trial.epoch += 1
        result = self._result(trial, row, value)
        trial.last_result, trial.best = result, max(trial.best, value)
        self._measure(trial, now, value)
        decision = self.scheduler.on_trial_result(self.controller, trial, result)
        if decision == TrialScheduler.PAUSE:
            raise ArenaError(
                f"scheduler {self.search.scheduler} paused a trial; the arena replays schedulers that "
                "continue or stop trials"
            )
        if decision != TrialScheduler.STOP:
            self.searcher.on_trial_result(trial.trial_id, result)
        if decision == TrialScheduler.STOP or trial.epoch >= self.board.table.epochs:
            self.scheduler.on_trial_complete(self.controller, trial, result)
            self.searcher.on_trial_complete(trial.trial_id, result)
            self._end(trial, "TERMINATED", now)
        else:
            self._schedule(trial, now)

    def _result(self, trial: _SimTrial, row: int, value: float) -> dict[str, Any]:
        result: dict[str, Any] = {TIME_ATTR: trial.epoch, "val_miou": value}
        for metric in self.metrics:
            if metric == "val_pixel_accuracy":
                result[metric] = float(self.board.values[metric][trial.arch, row, trial.epoch - 1])
            elif metric in COST_METRICS:
                result[metric] = float(self.board.cost(metric)[trial.arch])
        return result

    def _end(self, trial: _SimTrial, status: str, now: float) -> None:
        trial.status, trial.ended = status, now
        self.running -= 1

    def _measure(self, trial: _SimTrial, now: float, value: float) -> None:
        """The search exports its best single run: the incumbent changes only on a higher value."""
        if value > self.observed:
            self.incumbent, self.observed = trial.arch, value
        self.trace.append((now, len(self.trace) + 1, trial.number, self.incumbent, self.observed))

    # -- the end of a confirming search: nasfcn.confirm's policy, its runs on the same workers --------
    def _confirm(self, policy: ConfirmPolicy) -> Confirmation:
        """Run the confirmation runs ``nasfcn.confirm`` asks for, then export the best pooled mean."""
        start, epochs_before = self.clock, len(self.trace)
        unconfirmed = self._pick(self.incumbent, self.observed)
        targets, runs = confirmation_runs(self._rows(), policy, seed=0)
        seeds = self.board.table.seeds
        for run in runs:  # run.seed is 1..S: the S table seeds after the one the trial drew
            target = self.controller.trials[run.confirms]
            row = (target.row + run.seed) % len(seeds)
            number = len(self.controller.trials)
            self.controller.trials.append(_SimTrial(f"t{number}", number, target.arch, seeds[row], row))
            self.confirms[number] = run.confirms
        self.queue = [self.controller.trials[number] for number in self.confirms]
        self._fill(start)
        self._drain()
        confirmed = self._confirmed() or unconfirmed
        if len(self.trace) > epochs_before:  # the last confirmation epoch: the export is the confirmed pick
            self.trace[-1] = (*self.trace[-1][:3], self.board.index[confirmed.arch_id], confirmed.observed)
        numbers = tuple(int(row["number"]) for row in targets)
        spent = len(self.trace) - epochs_before
        return Confirmation(policy, numbers, unconfirmed, confirmed, spent, self.clock - start)

    def _rows(self) -> list[dict[str, Any]]:
        """The trial records ``nasfcn.confirm`` reads, as the search's store holds them."""
        return [
            {
                "number": t.number,
                "status": self._status(t),
                "best_miou": t.best if t.epoch else math.nan,
                "trial_key": self.board.trial_key(t.arch),
                "confirms": self.confirms.get(t.number),
                "seed": t.seed,
            }
            for t in self.controller.trials
        ]

    def _fill_confirmation(self, now: float) -> None:
        while self.running < self.search.concurrency and self.queue:
            trial = self.queue.pop(0)
            trial.status, trial.started = "RUNNING", now
            self.running += 1
            self._schedule(trial, now)

    def _confirm_epoch_done(self, trial: _SimTrial, now: float) -> None:
        """A confirmation run trains the full schedule: nothing stops it, no searcher hears of it."""
        value = float(self.board.values["val_miou"][trial.arch, trial.row, trial.epoch])
        if math.isnan(value):  # the run failed here in the table
            self._end(trial, "ERROR", now)
            return
        trial.epoch += 1
        trial.best = max(trial.best, value)
        self.trace.append((now, len(self.trace) + 1, trial.number, self.incumbent, self.observed))
        if trial.epoch >= self.board.table.epochs:
            self._end(trial, "TERMINATED", now)
        else:
            self._schedule(trial, now)

    def _confirmed(self) -> Pick | None:
        """The best pooled mean over a confirmed trial and its runs (``nasfcn.confirm.pooled``)."""
        frame = pd.DataFrame(self._rows(), columns=["number", "status", "best_miou", "confirms"])
        stats = pooled(frame.astype({"confirms": "float64"}))
        if stats.empty:
            return None
        best = stats.iloc[0]
        return self._pick(self.controller.trials[int(best["group"])].arch, float(best["confirmed_mean"]))

    def _pick(self, arch: int, observed: float) -> Pick:
        true_mean = float(self.board.means[arch])
        return Pick(self.board.archs[arch], observed, true_mean, self.board.best_mean - true_mean)

    def _status(self, trial: _SimTrial) -> str:
        """As the store calls it: completed (the full schedule), stopped (by the scheduler) or failed."""
        if trial.status == "TERMINATED":
            return "completed" if trial.epoch >= self.board.table.epochs else "stopped"
        return "failed" if trial.status == "ERROR" else trial.status.lower()

    # -- results as frames --------------------------------------------------------------------------
    def _trace_frame(self) -> pd.DataFrame:
        columns = ["time", "epochs", "trial", "incumbent", "observed"]
        frame = pd.DataFrame(self.trace, columns=columns)
        rows = frame["incumbent"].to_numpy(dtype=int)
        frame["true_mean"] = self.board.means[rows]
        frame["regret"] = self.board.best_mean - frame["true_mean"]
        frame["incumbent"] = [self.board.archs[i] for i in rows]
        return frame

    def _trials_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {
                    "number": t.number,
                    "arch_id": self.board.archs[t.arch],
                    "table_seed": t.seed,
                    "epochs": t.epoch,
                    "started": t.started,
                    "ended": t.ended,
                    "best": t.best if t.epoch else math.nan,
                    "status": self._status(t),
                    "confirms": self.confirms.get(t.number),
                }
                for t in self.controller.trials
            ],
            columns=[*TRIAL_COLUMNS, "confirms"],
        ).astype({"confirms": "Int64"})


def _stored_space(table: Table) -> SearchSpace:
    text = table.facts.get("space_yaml")
    if not text:
        raise ArenaError(
            f"{table.source}: the table stores no space YAML, so no searcher can propose its "
            "architectures; export it with nasfcn tabulate export"
        )
    space = parse_space(text, source=f"table {table.source}")
    if table.space_hash is not None and space_hash(space) != table.space_hash:
        raise ArenaError(
            f"{table.source}: the stored space YAML hashes to {space_hash(space)}, the table says "
            f"{table.space_hash}: export the table again"
        )
    return space
