"""Arena goals (issue 22): every goal figure from one command on a table, ready for RESULTS.md.

(a) **Headline**: ``tpe + asha`` against ``random + fifo``, replayed ``--repeats`` times (paired
    by seed): median epochs until the exported architecture's true mean reaches the target (the
    table's top 1% by default) with 95% bootstrap CIs, their ratio (goal <= 1/3, CI from a paired
    bootstrap of the repeats), regret at equal epochs with the Wilcoxon p (goal < 0.01) and the
    winner's curse of each pair.
(b) **Defaults sweep**, each setting replayed as ``tpe + asha`` and measured against the same
    ``random + fifo`` repeats at one epoch budget: ASHA grace period (1, 2, 3, epochs/4) x
    reduction factor (2, 3, 4); TPE start-up trials (4, 8, 16), independent / multivariate /
    multivariate with group, constant_liar off / on (nasfcn's ``tpe`` keeps Optuna's defaults:
    in Optuna 5 multivariate for one objective and constant_liar on, so those rows are ``tpe``
    itself); NSGA-II population (8, 16) when the table has a cost to be the second objective.
    Each row also has a p against the **default** setting (``tpe + asha``, the default grace,
    factor 2: the headline's own repeats), paired by seed and Holm-adjusted over the rows that
    differ from it, so "factor 3 beats factor 2" can be claimed or refuted, not just eyeballed.
    The TPE and NSGA-II variants are strategies registered here with
    ``nasfcn.search.optuna_strategy`` (``tpe-s8``, ``tpe-uv``, ``tpe-noliar``, ...) and
    unregistered at the end: a new strategy is in the arena with no other code.
(c) A markdown block to paste into RESULTS.md (printed, and written to ``--out``) and the JSON.

Progress goes to stderr with an ETA. On the busy 2-core machine one replay of 64 trials takes
~0.2 s (random + FIFO) to ~0.4 s (TPE + ASHA) alone, ~1.2 s while other jobs share the cores;
100 repeats of the headline and the 15 sweep settings that are not ``tpe`` itself are 1,700
replays: ~10 minutes, over 30 when the cores are shared. So the sweep's repeats are cut when
the rate measured on the headline says they would not fit in ``--minutes`` (default 15; never
below 20 repeats; the output says so); ``--sweep-repeats`` sets them outright.

    .venv/bin/python benchmarks/arena_goals.py --table benchmarks/tables/fcn_bench_shapes.parquet \
        [--repeats 100 --trials 64 --concurrency 4 --seed 0 --target 1%] [--out DIR]
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import optuna

from nasfcn.arena import (
    BASELINE,
    ArenaSearch,
    ArenaTable,
    ReplayResult,
    Target,
    bootstrap_median,
    per_repeat,
    replays,
    target_of,
    wilcoxon,
)
from nasfcn.catalogue import Strategy
from nasfcn.errors import NasfcnError
from nasfcn.search import SearchConfig, optuna_strategy, unregister_strategy
from nasfcn.stats import holm
from nasfcn.table import load

GOAL_RATIO = 1 / 3
GOAL_P = 0.01
RESAMPLES = 1000
#: nasfcn's TPE start-up trials and NSGA-II population (``nasfcn/search/_strategies.py``).
TPE_STARTUP = 4
NSGA_POPULATION = 8
#: Cost metrics that can be NSGA-II's second objective, in order of preference.
SECOND_OBJECTIVES = ("latency_ms", "params", "flops")
FIGURES = ("epochs_to_target", "regret_at_budget", "winners_curse")


# -- the strategies the sweep registers ---------------------------------------------------------------
def _tpe(**options: Any) -> Callable[[int, int], optuna.samplers.BaseSampler]:
    def make(seed: int, objectives: int) -> optuna.samplers.BaseSampler:
        with warnings.catch_warnings():  # multivariate and group are "experimental" in Optuna
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=seed, **{"n_startup_trials": TPE_STARTUP, **options})

    return make


def _nsga2(population: int) -> Callable[[int, int], optuna.samplers.BaseSampler]:
    def make(seed: int, objectives: int) -> optuna.samplers.BaseSampler:
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=population)

    return make


#: Optuna's own TPE defaults, which nasfcn's ``tpe`` keeps: Optuna 5 samples multivariate for one
#: objective (``multivariate=None``) and has ``constant_liar`` on.
_TPE_SIGNATURE = inspect.signature(optuna.samplers.TPESampler).parameters
MULTIVARIATE_DEFAULT = _TPE_SIGNATURE["multivariate"].default in (None, True)
LIAR_DEFAULT = bool(_TPE_SIGNATURE["constant_liar"].default)

#: name -> (description, sampler factory, multi-objective)
VARIANTS: dict[str, tuple[str, Callable[[int, int], optuna.samplers.BaseSampler], bool]] = {
    "tpe-s8": ("TPE, 8 start-up trials", _tpe(n_startup_trials=8), False),
    "tpe-s16": ("TPE, 16 start-up trials", _tpe(n_startup_trials=16), False),
    "tpe-uv": ("TPE, independent (univariate)", _tpe(multivariate=False), False),
    "tpe-mv": ("TPE, multivariate", _tpe(multivariate=True), False),
    "tpe-mvg": ("TPE, multivariate with group", _tpe(multivariate=True, group=True), False),
    "tpe-liar": ("TPE, constant_liar on", _tpe(constant_liar=True), False),
    "tpe-noliar": ("TPE, constant_liar off", _tpe(constant_liar=False), False),
    "nsga2-p16": ("NSGA-II, population 16", _nsga2(16), True),
}


@contextmanager
def registered_variants() -> Iterator[None]:
    """The sweep's strategies, registered for the arena (and ``nasfcn search``) while it runs."""
    done = []
    try:
        for name, (doc, make, multi) in VARIANTS.items():
            optuna_strategy(Strategy(name, doc, multi_objective=multi))(make)
            done.append(name)
        yield
    finally:
        for name in done:
            unregister_strategy(name)


# -- measuring ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    """One strategy x scheduler setting's figures over its repeats (medians with 95% CIs)."""

    knob: str  # what the sweep varies ("headline" for the headline's two pairs)
    setting: str  # its value, as a reader would write it
    search: ArenaSearch  # what was replayed
    repeats: int
    figures: dict[str, tuple[float, float, float]]  # figure -> (median, low, high)
    reached_share: float
    p_value: float  # Wilcoxon on regret at the budget against random + fifo, paired by seed
    p_holm: float = math.nan
    default: bool = False  # nasfcn search's default setting
    #: Wilcoxon on regret at the budget against the default tpe + asha's repeats, paired by seed
    #: (Holm over the sweep's rows); NaN: the headline, the baseline, or the default search itself
    p_vs_default: float = math.nan
    p_vs_default_holm: float = math.nan

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"knob": self.knob, "setting": self.setting, "default": self.default}
        out.update({"strategy": self.search.strategy, "scheduler": self.search.scheduler})
        out.update({"repeats": self.repeats, "reached_share": self.reached_share})
        out.update({k: _interval(v) for k, v in self.figures.items()})
        out.update({"p_value": _finite(self.p_value), "p_holm": _finite(self.p_holm)})
        out["p_vs_default"] = _finite(self.p_vs_default)
        out["p_vs_default_holm"] = _finite(self.p_vs_default_holm)
        return out


def measure(
    results: Sequence[ReplayResult],
    baseline: Sequence[ReplayResult] | None,
    target: float,
    budget: int,
    knob: str,
    setting: str,
    default: bool = False,
    seed: int = 0,
) -> Row:
    """``results`` (one setting's repeats) against ``baseline`` (random + fifo, the same seeds;
    None: these are the baseline, no test)."""
    mine = per_repeat(results, target, budget)
    figures = {}
    for name in FIGURES:
        median, low, high = bootstrap_median(mine[name].to_numpy(), RESAMPLES, seed)
        figures[name] = (float(median[0]), float(low[0]), float(high[0]))
    p = math.nan if baseline is None else paired_p(results, baseline, target, budget)
    search = results[0].search
    reached = float(mine["reached"].mean())
    return Row(knob, setting, search, len(mine), figures, reached, p, default=default)


def paired_p(
    results: Sequence[ReplayResult], other: Sequence[ReplayResult], target: float, budget: int
) -> float:
    """Wilcoxon p of regret at ``budget``, ``results`` against ``other``, repeats paired by seed
    (NaN: no seed in common)."""
    mine = per_repeat(results, target, budget).set_index("seed")["regret_at_budget"].rename("mine")
    base = per_repeat(other, target, budget).set_index("seed")["regret_at_budget"].rename("base")
    paired = mine.to_frame().join(base, how="inner")
    return wilcoxon(paired["mine"], paired["base"]) if len(paired) else math.nan


def fewest_epochs(results: Sequence[ReplayResult]) -> int:
    """The equal-epochs budget: the fewest epochs any replay trained (as ``compare`` uses)."""
    return min(int(r.trace["epochs"].iloc[-1]) if len(r.trace) else 0 for r in results)


def ratio_ci(
    tpe: Sequence[ReplayResult], base: Sequence[ReplayResult], target: float, seed: int = 0
) -> tuple[float, float, float]:
    """Median epochs to target of ``tpe`` over that of ``base``, with a paired percentile bootstrap
    (repeats resampled together). inf: TPE's median never reached it; NaN: neither did."""
    a = _by_seed(tpe, target)
    b = _by_seed(base, target)
    seeds = sorted(set(a) & set(b))
    x, y = np.array([a[s] for s in seeds]), np.array([b[s] for s in seeds])
    picks = np.random.default_rng(seed).integers(0, len(seeds), size=(RESAMPLES, len(seeds)))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = np.median(x[picks], axis=1) / np.median(y[picks], axis=1)
        value = float(np.median(x) / np.median(y))
    ratios = ratios[~np.isnan(ratios)]
    if len(ratios) == 0:
        return value, math.nan, math.nan
    low, high = np.percentile(ratios, [2.5, 97.5], method="lower")
    return value, float(low), float(high)


def _by_seed(results: Sequence[ReplayResult], target: float) -> dict[int, float]:
    frame = per_repeat(results, target, 1)
    return dict(zip(frame["seed"].astype(int), frame["epochs_to_target"], strict=True))


# -- progress -------------------------------------------------------------------------------------------
@dataclass
class Progress:
    """Replays done of the planned total, with an ETA from the rate so far, on stderr (every ~10 s)."""

    total: int
    stream: TextIO = sys.stderr
    every: float = 10.0
    done: int = 0
    started: float = field(default_factory=time.perf_counter)
    _shown: float = 0.0
    _last: float = field(default_factory=time.perf_counter)
    _per_pair: dict[str, list[float]] = field(default_factory=dict)  # pair -> seconds of its replays

    def __call__(self, result: ReplayResult) -> None:
        self.done += 1
        now = time.perf_counter()
        self._per_pair.setdefault(result.search.pair, []).append(now - self._last)
        self._last = now
        if now - self._shown >= self.every or self.done == self.total:
            self._shown = now
            elapsed = now - self.started
            eta = elapsed / self.done * max(0, self.total - self.done)
            print(
                f"[{self.done}/{self.total} replays] {result.search.pair}; {elapsed:.0f} s so far, "
                f"ETA {eta / 60:.1f} min",
                file=self.stream,
                flush=True,
            )

    def seconds_per_replay(self, pair: str | None = None) -> float:
        """Mean seconds of one replay of ``pair`` so far (of any pair when None or not seen)."""
        if pair in self._per_pair:
            return sum(self._per_pair[pair]) / len(self._per_pair[pair])
        return (time.perf_counter() - self.started) / max(1, self.done)


# -- (a) the headline -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Headline:
    """``tpe + asha`` against ``random + fifo``: the issue's first goal and the winner's curse."""

    target: Target
    budget: int
    repeats: int
    trials: int
    concurrency: int
    baseline: Row
    tpe: Row
    ratio: tuple[float, float, float]  # median epochs to target, tpe / random, with its CI
    results: dict[str, list[ReplayResult]]  # pair -> its replays, for the sweep to reuse

    @property
    def ratio_met(self) -> bool:
        return self.ratio[0] <= GOAL_RATIO

    @property
    def p_met(self) -> bool:
        lower = self.tpe.figures["regret_at_budget"][0] < self.baseline.figures["regret_at_budget"][0]
        return lower and self.tpe.p_value < GOAL_P

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": {"miou": self.target.value, "spec": self.target.spec, "reaching": self.target.reaching},
            "budget_epochs": self.budget,
            "repeats": self.repeats,
            "trials": self.trials,
            "concurrency": self.concurrency,
            "pairs": [self.baseline.as_dict(), self.tpe.as_dict()],
            "ratio": _interval(self.ratio),
            "goal_ratio_met": self.ratio_met,
            "goal_p_met": self.p_met,
        }


def headline(
    board: ArenaTable,
    target: Target,
    repeats: int,
    trials: int,
    concurrency: int = 4,
    seed: int = 0,
    progress: Callable[[ReplayResult], None] | None = None,
) -> Headline:
    """Replay both pairs ``repeats`` times (seeds seed..seed+R-1) and measure the goal figures."""
    pairs = {
        "random + fifo": ArenaSearch(*BASELINE, trials, concurrency),
        "tpe + asha": ArenaSearch("tpe", "asha", trials, concurrency),
    }
    results = {name: replays(board, [s], repeats, seed, progress) for name, s in pairs.items()}
    budget = fewest_epochs([r for rs in results.values() for r in rs])
    base, tpe = results["random + fifo"], results["tpe + asha"]
    return Headline(
        target,
        budget,
        repeats,
        trials,
        concurrency,
        measure(base, None, target.value, budget, "headline", "random + fifo", seed=seed),
        measure(tpe, base, target.value, budget, "headline", "tpe + asha", default=True, seed=seed),
        ratio_ci(tpe, base, target.value, seed),
        results,
    )


def headline_markdown(head: Headline) -> list[str]:
    """The headline as a markdown table and two goal lines."""
    lines = [
        f"Target: true mean val mIoU >= {head.target.value:.4f} ({head.target.spec}: "
        f"{head.target.reaching} of {head.target.architectures} architectures); {head.repeats} repeats x "
        f"{head.trials} trials, concurrency {head.concurrency}; regret compared at {head.budget} epochs.",
        "",
        "| pair | epochs to target | reached | regret at equal epochs | p vs random + fifo "
        "| winner's curse |",
        "|---|---|---|---|---|---|",
        *(_cells(row) for row in (head.baseline, head.tpe)),
        "",
        f"- epochs to target, tpe + asha / random + fifo: **{_num(head.ratio[0], 2)}** "
        f"[{_num(head.ratio[1], 2)}, {_num(head.ratio[2], 2)}] (goal <= 0.33: "
        f"{'met' if head.ratio_met else 'not met'})",
        f"- regret at {head.budget} epochs lower with Wilcoxon p = {_p(head.tpe.p_value)} (goal < 0.01: "
        f"{'met' if head.p_met else 'not met'})",
    ]
    return lines


# -- (b) the defaults sweep -------------------------------------------------------------------------
@dataclass(frozen=True)
class Setting:
    knob: str
    value: str
    search: ArenaSearch
    default: bool = False


def settings(board: ArenaTable, trials: int, concurrency: int) -> tuple[list[Setting], list[str]]:
    """Every setting the sweep replays, and the lines saying what it skipped and why."""
    epochs = board.table.epochs
    default_grace = SearchConfig(space="", epochs=epochs).asha_grace_period
    out, skipped = [], []
    graces = sorted({min(epochs, g) for g in (1, 2, 3, default_grace)})
    for grace in graces:
        for factor in (2, 3, 4):
            is_default = grace == default_grace and factor == 2
            label = f"grace {grace}{' (= epochs/4)' if grace == default_grace else ''}, factor {factor}"
            given = None if is_default else grace  # the default exactly as the headline replays it
            search = ArenaSearch("tpe", "asha", trials, concurrency, ("miou",), given, factor)
            out.append(Setting("ASHA grace period x reduction factor", label, search, is_default))
    mv, liar = "TPE multivariate / group", f"TPE constant_liar (concurrency {concurrency})"
    tpe = [("TPE n_startup_trials", f"{TPE_STARTUP}", "tpe", True)]
    tpe += [("TPE n_startup_trials", n, f"tpe-s{n}", False) for n in ("8", "16")]
    tpe += [_optuna_default(mv, "independent", "tpe-uv", not MULTIVARIATE_DEFAULT)]
    tpe += [_optuna_default(mv, "multivariate", "tpe-mv", MULTIVARIATE_DEFAULT)]
    tpe += [(mv, "multivariate + group", "tpe-mvg", False)]
    tpe += [_optuna_default(liar, "off", "tpe-noliar", not LIAR_DEFAULT)]
    tpe += [_optuna_default(liar, "on", "tpe-liar", LIAR_DEFAULT)]
    for knob, value, strategy, is_default in tpe:
        out.append(Setting(knob, value, ArenaSearch(strategy, "asha", trials, concurrency), is_default))
    second = second_objective(board)
    if second is None:
        skipped.append(
            "NSGA-II population: skipped, the table has no cost measured for every architecture "
            f"({', '.join(SECOND_OBJECTIVES)}) to be the second objective"
        )
    else:
        for population, strategy in ((NSGA_POPULATION, "nsga2"), (16, "nsga2-p16")):
            search = ArenaSearch(strategy, "asha", trials, concurrency, ("miou", second))
            knob = f"NSGA-II population (miou + {second})"
            out.append(Setting(knob, str(population), search, population == NSGA_POPULATION))
    return out, skipped


def _optuna_default(knob: str, value: str, variant: str, default: bool) -> tuple[str, str, str, bool]:
    """Optuna's default value is nasfcn's ``tpe`` itself (its replays reused); another, the variant."""
    return (knob, value, "tpe" if default else variant, default)


def second_objective(board: ArenaTable) -> str | None:
    """The first cost the table holds for every architecture, NSGA-II's second objective; None: none."""
    for metric in SECOND_OBJECTIVES:
        values = board.cost(metric)
        if len(values) and np.isfinite(values).all() and np.ptp(values) > 0:
            return metric
    return None


@dataclass(frozen=True)
class Sweep:
    rows: list[Row]
    budget: int
    repeats: int
    skipped: list[str]
    note: str  # why the repeats were cut, or ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "budget_epochs": self.budget,
            "repeats": self.repeats,
            "skipped": self.skipped,
            "note": self.note,
            "rows": [row.as_dict() for row in self.rows],
        }


def sweep(
    board: ArenaTable,
    head: Headline,
    planned: list[Setting],
    repeats: int,
    seed: int,
    progress: Callable[[ReplayResult], None] | None = None,
    skipped: Sequence[str] = (),
    note: str = "",
) -> Sweep:
    """Replay every setting (a search replayed once serves every row it appears in) and measure them
    against the headline's random + fifo repeats of the same seeds, at one equal-epochs budget, and
    against the default setting's repeats (the headline's tpe + asha)."""
    seeds = set(range(seed, seed + repeats))
    reused = {head.tpe.search: head.results["tpe + asha"]} if repeats <= head.repeats else {}
    cache: dict[ArenaSearch, list[ReplayResult]] = {}
    for search in (s.search for s in planned):
        if search not in cache:
            kept = [r for r in reused.get(search, []) if r.seed in seeds]
            cache[search] = kept or replays(board, [search], repeats, seed, progress)
    base = [r for r in head.results["random + fifo"] if r.seed in seeds]
    budget = fewest_epochs([*base, *(r for rs in cache.values() for r in rs)])
    target = head.target.value
    rows = [measure(base, None, target, budget, "baseline", "random + fifo", seed=seed)]
    rows += [
        measure(cache[s.search], base, target, budget, s.knob, s.value, s.default, seed) for s in planned
    ]
    adjusted = holm([r.p_value for r in rows])
    rows = [replace(r, p_holm=p) for r, p in zip(rows, adjusted, strict=True)]
    return Sweep(
        versus_default(rows, cache, head.tpe.search, target, budget), budget, repeats, list(skipped), note
    )


def versus_default(
    rows: list[Row],
    cache: dict[ArenaSearch, list[ReplayResult]],
    default: ArenaSearch,
    target: float,
    budget: int,
) -> list[Row]:
    """Each sweep row's regret at ``budget`` against the ``default`` search's, paired by seed, Holm over
    the rows that replay another search (the default's own rows and the baseline get NaN)."""
    if default not in cache:
        return rows
    p = [
        paired_p(cache[row.search], cache[default], target, budget)
        if row.search in cache and row.search != default and row.knob != "baseline"
        else math.nan
        for row in rows
    ]
    adjusted = holm(p)
    return [
        replace(row, p_vs_default=raw, p_vs_default_holm=held)
        for row, raw, held in zip(rows, p, adjusted, strict=True)
    ]


def sweep_markdown(result: Sweep) -> list[str]:
    """The sweep as one markdown table, a row per setting, grouped by the knob it varies."""
    lines = [
        f"Each setting replayed as its strategy + asha, {result.repeats} repeats, against the same "
        f"random + fifo repeats; regret compared at {result.budget} epochs; p: Wilcoxon, Holm over the "
        "table; p vs default: the same test against the default setting's repeats (tpe + asha, the "
        "default grace, factor 2; paired by seed), Holm over the settings that differ from it. "
        "(default): nasfcn search's default.",
    ]
    if result.note:
        lines.append(f"Note: {result.note}")
    lines += [
        "",
        "| knob | setting | epochs to target | reached | regret at equal epochs | p (Holm) "
        "| p vs default (Holm) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in result.rows:
        median = _ci(row.figures["epochs_to_target"], 0)
        regret = _ci(row.figures["regret_at_budget"], 4)
        setting = f"{row.setting}{' (default)' if row.default else ''}"
        versus = "n/a" if math.isnan(row.p_vs_default_holm) else _p(row.p_vs_default_holm)
        lines.append(
            f"| {row.knob} | {setting} | {median} | {row.reached_share:.0%} | {regret} | {_p(row.p_holm)} "
            f"| {versus} |"
        )
    lines += [f"- {line}" for line in result.skipped]
    return lines


def _cells(row: Row) -> str:
    return (
        f"| {row.setting} | {_ci(row.figures['epochs_to_target'], 0)} | {row.reached_share:.0%} | "
        f"{_ci(row.figures['regret_at_budget'], 4)} | {_p(row.p_value)} | "
        f"{_ci(row.figures['winners_curse'], 4)} |"
    )


def _ci(figure: tuple[float, float, float], digits: int) -> str:
    median, low, high = figure
    return f"{_num(median, digits)} [{_num(low, digits)}, {_num(high, digits)}]"


def _num(value: float, digits: int) -> str:
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "never"
    return f"{value:.{digits}f}"


def _p(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2g}"


def _interval(figure: tuple[float, float, float]) -> dict[str, Any]:
    return dict(zip(("median", "low", "high"), map(_finite, figure), strict=True))


def _finite(value: Any) -> Any:
    """JSON has no inf or NaN: None (never reached / not defined)."""
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


# -- the command ----------------------------------------------------------------------------------------
def plan_sweep_repeats(
    asked: int | None, repeats: int, planned: int, per_replay: float, minutes: float
) -> tuple[int, str]:
    """The sweep's repeats: ``asked``, else ``repeats`` cut to fit ``minutes`` (never below 20)."""
    if asked is not None:
        return asked, "" if asked == repeats else f"the sweep ran {asked} repeats (--sweep-repeats)"
    fits = int(minutes * 60 / max(per_replay * planned, 1e-9))
    if fits >= repeats:
        return repeats, ""
    cut = max(min(20, repeats), fits)
    return cut, (
        f"the sweep ran {cut} of {repeats} repeats: {planned} settings at {per_replay:.2f} s per replay "
        f"would not fit in {minutes:g} minutes"
    )


def run(args: argparse.Namespace, stream: TextIO = sys.stderr) -> dict[str, Any]:
    """Everything the command computes: the headline, the sweep, the markdown and the JSON."""
    started = time.perf_counter()
    board = ArenaTable(load(args.table))
    target = target_of(board, args.target)
    with registered_variants():
        planned, skipped = settings(board, args.trials, args.concurrency)
        fresh = len({s.search for s in planned} - {ArenaSearch("tpe", "asha", args.trials, args.concurrency)})
        progress = Progress(2 * args.repeats + fresh * (args.sweep_repeats or args.repeats), stream)
        head = headline(board, target, args.repeats, args.trials, args.concurrency, args.seed, progress)
        repeats, note = plan_sweep_repeats(
            args.sweep_repeats, args.repeats, fresh, progress.seconds_per_replay("tpe + asha"), args.minutes
        )
        progress.total = progress.done + fresh * repeats
        swept = sweep(board, head, planned, repeats, args.seed, progress, skipped, note)
    name = board.table.facts.get("name") or Path(args.table).stem
    lines = [
        f"### Arena goals on table {name} (hash {str(board.table.facts.get('checksum'))[:12]})",
        "",
        f"`python benchmarks/arena_goals.py --table {args.table} --repeats {args.repeats} --trials "
        f"{args.trials} --concurrency {args.concurrency} --seed {args.seed}"
        + ("" if args.target == "1%" else f" --target {args.target}")
        + "`",
        "",
        "**Headline: tpe + asha against random + fifo** (median [95% bootstrap CI])",
        "",
        *headline_markdown(head),
        "",
        "**Defaults sweep** (median [95% bootstrap CI])",
        "",
        *sweep_markdown(swept),
        "",
        f"{progress.done} replays in {time.perf_counter() - started:.0f} s.",
    ]
    summary = {
        "table": {"name": name, "source": str(args.table), "hash": board.table.facts.get("checksum")},
        "plan": {k: getattr(args, k) for k in ("repeats", "trials", "concurrency", "seed", "target")},
        "headline": head.as_dict(),
        "sweep": swept.as_dict(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    return {"markdown": "\n".join(lines) + "\n", "json": summary}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--table", required=True, help="a table's .parquet file (nasfcn tabulate export)")
    p.add_argument("--repeats", type=int, default=100)
    p.add_argument("--trials", type=int, default=64)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--target", default="1%", help="top share of architectures (1%%) or a mean val mIoU")
    p.add_argument(
        "--sweep-repeats",
        type=int,
        help="repeats of each sweep setting (default: --repeats, cut to fit --minutes)",
    )
    p.add_argument("--minutes", type=float, default=15.0, help="the sweep's time budget when cutting repeats")
    p.add_argument("--out", type=Path, help="folder for arena_goals.md and arena_goals.json")
    return p


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parser().parse_args(argv)
    for option in ("repeats", "trials", "concurrency"):
        if getattr(args, option) < 1:
            parser().error(f"--{option} must be >= 1, got {getattr(args, option)}")
    if args.sweep_repeats is not None and not 1 <= args.sweep_repeats <= args.repeats:
        parser().error(f"--sweep-repeats must be 1 to --repeats ({args.repeats}), got {args.sweep_repeats}")
    try:
        done = run(args)
    except NasfcnError as err:  # a table or a target the arena cannot use: one line, exit 2
        parser().error(str(err))
    print(done["markdown"], end="")
    if args.out is not None:
        write_results(args.out, "arena_goals", done)
    return done


def write_results(out: Path, stem: str, done: dict[str, Any]) -> None:
    """``out/<stem>.md`` and ``out/<stem>.json`` from a run's ``markdown`` and ``json``, named on stderr."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.md").write_text(done["markdown"], encoding="utf-8")
    text = json.dumps(done["json"], indent=2, allow_nan=False) + "\n"
    (out / f"{stem}.json").write_text(text, encoding="utf-8")
    print(f"written: {out / f'{stem}.md'}, {out / f'{stem}.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
