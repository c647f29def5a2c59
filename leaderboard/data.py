"""Everything the leaderboard draws for one search, read once through ``nasfcn.store``'s frames."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from leaderboard._proxies import board_scores, with_proxies
from leaderboard.table import Column, benchmark_columns, benchmark_table
from nasfcn.confirm import with_pooled
from nasfcn.genotype import Genotype
from nasfcn.results import aggregate_ranks, benchmark_results, plan_labels
from nasfcn.store import (
    ARENA_KIND,
    DEFAULT_URL,
    EPOCH_COLUMNS,
    RESULT_STATUSES,
    ColumnFilter,
    Condition,
    PageQuery,
    Store,
    arena_curves_frame,
    arena_leaderboard_frame,
    benchmark_runs_frame,
    best_per_architecture,
    epochs_frame,
    leaderboard_frame,
    per_class_iou_frame,
    search_details,
    search_list,
    searches_frame,
    seed_spread_frame,
    spread_recipe,
    trial_search,
    trials_page,
)

#: Statuses whose trials have no validation result by construction.
NO_RESULT = ("failed", "rejected_by_constraint")


@dataclass(frozen=True)
class Board:
    """One search as the leaderboard sees it; every frame is read in ``load_board``."""

    search: str
    dataset: str
    status: str  # the search's: running, completed, interrupted, ...
    database: str  # URL, password masked
    trials: pd.DataFrame  # leaderboard_frame + started_at/finished_at
    epochs: pd.DataFrame  # epochs_frame
    per_class: pd.DataFrame  # per_class_iou_frame (long: trial_id, class_index, iou)
    across: pd.DataFrame  # best_per_architecture on the same dataset
    searches: pd.DataFrame  # search_list: every search's name and kind, the latest first
    reused_epochs: pd.DataFrame  # epochs of trials in other searches whose results cached trials reused
    class_names: tuple[str, ...] = field(default=())
    proxies: pd.DataFrame = field(default_factory=pd.DataFrame)  # proxy_scores_frame of its networks
    # An arena's: trial_id -> the trial in ``epochs`` whose first ``epochs_trained`` epochs are its
    # curve (``arena_curves_frame``; NaN: none). None: each trial's epochs are its own.
    curve_source: pd.Series | None = None

    @property
    def scored(self) -> pd.DataFrame:
        """The trials with a validation mIoU, best first."""
        return self.trials[self.trials["best_miou"].notna()]

    def class_name(self, index: int) -> str:
        return self.class_names[index] if index < len(self.class_names) else f"class {index}"

    def message(self) -> str | None:
        """A sentence for a search that has nothing (or nothing yet) to compare; None otherwise."""
        return board_message(self.trials, self.status)

    def curves(self, trial_ids: Sequence[int] | None = None) -> pd.DataFrame:
        """Every trial's epochs (or those of ``trial_ids``); a cached trial gets the epochs of the
        trial it reused, as its own, and an arena's trial the prefix of its shared curve."""
        if self.curve_source is not None:
            return self._shared_curves(self.curve_source, trial_ids)
        pool = pd.concat([self.epochs, self.reused_epochs]) if not self.reused_epochs.empty else self.epochs
        reused = self.trials["cached_from"].notna() if "cached_from" in self.trials else None
        parts = [self.epochs]
        if reused is not None and reused.any():  # one join for all cached trials, not a scan per trial
            cached = self.trials.loc[reused, ["trial_id", "number", "arch_id", "status"]]
            cached = cached.assign(source=self.trials.loc[reused, "cached_from"].astype(int))
            borrowed = pool.drop(columns=["number", "arch_id", "status"]).merge(
                cached, left_on="trial_id", right_on="source", suffixes=("_own", "")
            )
            parts.append(borrowed.drop(columns=["trial_id_own", "source"]).loc[:, list(self.epochs.columns)])
        curves = pd.concat(parts, ignore_index=True).sort_values(["trial_id", "epoch"], ignore_index=True)
        return curves if trial_ids is None else curves[curves["trial_id"].isin(list(trial_ids))]

    def _shared_curves(self, source: pd.Series, trial_ids: Sequence[int] | None) -> pd.DataFrame:
        """``curves`` of an arena: each trial's first ``epochs_trained`` epochs of its source's."""
        trials = (
            self.trials if trial_ids is None else self.trials[self.trials["trial_id"].isin(list(trial_ids))]
        )
        wanted = trials.loc[:, ["trial_id", "number", "arch_id", "status", "epochs_trained"]]
        wanted = wanted.assign(source=wanted["trial_id"].map(source))
        columns = [c for c in self.epochs.columns if c != "seed"]
        shared = self.epochs.drop(columns=["number", "arch_id", "status", "seed"])
        joined = wanted.merge(shared.rename(columns={"trial_id": "source"}), on="source")
        joined = joined[joined["epoch"] <= joined["epochs_trained"]]
        return joined.loc[:, columns].sort_values(["trial_id", "epoch"], ignore_index=True)

    def curve(self, trial_id: int) -> pd.DataFrame:
        """The epochs behind one trial's result (see ``curves``)."""
        curves = self.curves()
        return curves[curves["trial_id"] == trial_id]

    def export_command(self, number: int) -> str:
        """The shell command that exports trial ``number`` of this search."""
        return export_command(self.search, number, self.database)


def load_board(store: Store, search: str | None = None) -> Board:
    """Read a search (the latest when ``search`` is None) and the cross-search view of its dataset."""
    return _load_board(store, search_details(store, search))


#: The architectures a board's cross-search view reads (static and live): the most
#: ``cross_search_figure`` draws (its ``top``).
ACROSS_TOP = 25
#: What a board reads of each epoch when it only draws learning curves (``load_view(curves_only=True)``).
CURVE_COLUMNS = ("epoch", "val_miou")


def load_view(store: Store, search: str | None = None, curves_only: bool = False) -> Board | BenchmarkBoard:
    """What the leaderboard shows for ``search`` (default: the latest): a benchmark's statistics
    for a benchmark, the search board for anything else. With ``curves_only`` a board's
    ``epochs`` hold only ``CURVE_COLUMNS`` (the static file draws nothing else from them)."""
    details = search_details(store, search)
    if details["kind"] == "benchmark":
        return _load_benchmark(store, details)
    if curves_only:
        return _load_board(store, details, CURVE_COLUMNS, across_top=ACROSS_TOP)
    return _load_board(store, details)


def load_live_view(
    store: Store, search: str | None, pick: Callable[[pd.DataFrame], Sequence[int]]
) -> Board | BenchmarkBoard:
    """``load_view`` for the live app: every trial, but epochs and per-class IoU only of the
    trials ``pick`` chooses (trials -> ids: the curves and bars it draws)."""
    details = search_details(store, search)
    if details["kind"] == "benchmark":
        return _load_benchmark(store, details)
    return _load_board(store, details, pick=pick)


def load_trial_board(store: Store, trial_id: int) -> Board:
    """A board holding one trial (its row, epochs and per-class IoU): what its detail page draws,
    redrawn on every tick of the live app, so it reads nothing about the other trials (no
    cross-search view, no list of searches: both empty)."""
    details = search_details(store, trial_search(store, trial_id))
    match = ColumnFilter((Condition("trial_id", "equals", int(trial_id)),))
    row = trials_page(store, details["search_id"], PageQuery(limit=1, filters=(match,))).rows
    return _load_board(store, details, pick=lambda trials: [trial_id], trials=row, others=False)


def _load_board(
    store: Store,
    details: Mapping[str, Any],
    epoch_columns: Sequence[str] = EPOCH_COLUMNS,
    pick: Callable[[pd.DataFrame], Sequence[int]] | None = None,
    trials: pd.DataFrame | None = None,
    others: bool = True,
    across_top: int | None = None,
) -> Board:
    """``pick`` (trials -> trial ids) limits the epochs and per-class IoU read to those trials
    (the live app draws a few curves, never every epoch of 10^5 trials); ``trials`` replaces
    the search's trials (one trial's detail page reads only that one); without ``others`` the
    views over other trials (best per architecture across searches, every search) stay empty;
    ``across_top``: the cross-search view reads only that many best architectures."""
    name = details["name"]
    arena = details["kind"] == ARENA_KIND
    scores = board_scores(store, details, None if trials is None else trials["arch_id"].tolist())
    if trials is None:
        trials = search_trials(store, details)
    trials = with_proxies(trials, scores)
    chosen = None if pick is None else sorted({int(t) for t in pick(trials)})
    source = None
    if chosen is None and arena:  # one curve per (architecture, table seed), not per trial
        epochs = arena_curves_frame(store, name, columns=epoch_columns, trials=trials)
        source = curve_sources(trials, epochs)
    elif chosen is None:
        epochs = epochs_frame(store, name, columns=epoch_columns)
    else:
        epochs = epochs_frame(store, trial_ids=chosen, columns=epoch_columns)
    shown = trials if chosen is None else trials[trials["trial_id"].isin(chosen)]
    sources = set(shown["cached_from"].dropna().astype(int)) - set(epochs["trial_id"])
    reused = (
        epochs_frame(store, trial_ids=sorted(sources), columns=epoch_columns) if sources else epochs.iloc[0:0]
    )
    if source is not None:  # an arena stores no per-class IoU (a table holds none): nothing to join
        per_class = per_class_iou_frame(store, trial_ids=[])
    else:
        per_class = per_class_iou_frame(store, name, trial_ids=chosen)
    return Board(
        search=name,
        dataset=f"table {details['config'].get('table')} (arena)" if arena else details["dataset"],
        status=details["status"],
        database=store.masked_url,
        trials=trials,
        epochs=epochs,
        per_class=per_class,
        across=best_per_architecture(store, details["dataset"], top=across_top) if others else pd.DataFrame(),
        searches=search_list(store) if others else pd.DataFrame(),  # names only: no count of every trial
        reused_epochs=reused,
        class_names=class_names(details, per_class),
        proxies=scores,
        curve_source=source,
    )


def curve_sources(trials: pd.DataFrame, shared: pd.DataFrame) -> pd.Series:
    """trial_id -> the trial of ``shared`` (``arena_curves_frame``) with its architecture and seed."""
    keys = ["arch_id", "seed"]
    longest = (
        shared.loc[:, ["trial_id", *keys]].drop_duplicates("trial_id").rename(columns={"trial_id": "source"})
    )
    longest = longest.astype({"seed": "Int64"})
    found = trials.loc[:, ["trial_id", *keys]].astype({"seed": "Int64"}).merge(longest, on=keys, how="left")
    return pd.Series(found["source"].to_numpy(dtype=float), index=found["trial_id"].to_numpy(), name="source")


def class_names(details: Mapping[str, Any], per_class: pd.DataFrame) -> tuple[str, ...]:
    """The dataset's class names, and "class i" for any class index past them the IoU holds."""
    width = int(per_class["class_index"].max()) + 1 if not per_class.empty else 0
    names = details["class_names"] or ()
    return tuple(names) + tuple(f"class {i}" for i in range(len(names), width))


def search_trials(store: Store, details: Mapping[str, Any]) -> pd.DataFrame:
    """Every trial of a search as the board shows it: ``leaderboard_frame``, start and finish,
    and the spread over seeds (two small reads for the whole board, never one per trial)."""
    name = details["name"]
    times = ("started_at", "finished_at")  # parsed as trial_times_frame gives them, in the same read
    arena = details["kind"] == ARENA_KIND  # and which strategy, scheduler and repeat each trial replays
    trials = arena_leaderboard_frame(store, name, times) if arena else leaderboard_frame(store, name, times)
    # a category: every row selection and sort of the board copies codes, not 10^5 long texts
    trials = trials.assign(genotype_json=trials["genotype_json"].astype("category"))
    if not trials.empty:
        trials = with_seed_spread(
            trials,
            seed_spread_frame(store, details["dataset"], repeated_only=True),
            spread_recipe(store, name),
        )
    return with_pooled(trials)  # a search with confirmation runs ranks by their mean


def with_seed_spread(trials: pd.DataFrame, spread: pd.DataFrame, recipe: str | None = None) -> pd.DataFrame:
    """``trials`` plus the spread over seeds of each trial's network + knobs (``trial_key``).

    From ``spread`` (``seed_spread_frame``: every search and benchmark on the dataset), rows
    with two seeds or more; the row trained with ``recipe`` (``spread_recipe``) is preferred,
    else the one with the most seeds, flagged in ``seeds_other_recipe``. Adds ``seeds_n``,
    ``seeds_mean``, ``seeds_std`` (NaN where there is no spread) and ``seeds_other_recipe``.
    """
    repeated = spread[spread["seeds"] >= 2]
    if repeated.empty:  # nothing to look up: skip hashing every trial's genotype
        nothing = pd.Series(np.nan, index=trials.index, dtype=float)
        return trials.assign(seeds_n=nothing, seeds_mean=nothing, seeds_std=nothing, seeds_other_recipe=False)
    repeated = repeated.assign(other=repeated["recipe"] != recipe).sort_values(
        ["other", "seeds", "miou_mean"], ascending=[True, False, False], kind="stable"
    )
    best = repeated.drop_duplicates("trial_key").set_index("trial_key")
    candidates = trials["arch_id"].isin(set(repeated["arch_id"])) if "arch_id" in trials else None
    texts = trials["genotype_json"] if candidates is None else trials.loc[candidates, "genotype_json"]
    # once per distinct genotype: an arena's 10^5 trials re-run a table's few hundred networks
    hashed = {text: Genotype.from_json(text).trial_key for text in set(texts.tolist())}
    keys = trials["genotype_json"].map(hashed).astype(object)
    return trials.assign(
        seeds_n=keys.map(best["seeds"]).astype(float),
        seeds_mean=keys.map(best["miou_mean"]).astype(float),
        seeds_std=keys.map(best["miou_std"]).astype(float),
        seeds_other_recipe=keys.map(best["other"]).eq(True),
    )


def board_message(trials: pd.DataFrame, status: str = "completed") -> str | None:
    """Why there is nothing to compare: no trials, one trial, or no trial with a result."""
    running = status == "running"
    if trials.empty:
        return (
            "No trials yet: this page fills in as the search runs."
            if running
            else "This search has no trials."
        )
    scored = int(trials["best_miou"].notna().sum())
    if scored == 0:
        counts = trials["status"].value_counts()
        parts = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in counts.items())
        wait = " yet" if running else ""
        return f"No trial has a validation result{wait} ({parts}): the table lists each trial's error."
    if len(trials) == 1:
        return "Only one trial so far: nothing to compare it with yet."
    return None


def filter_trials(
    trials: pd.DataFrame,
    statuses: Sequence[str] | None = None,
    knobs: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """The trials whose status is in ``statuses`` and whose knobs take one of the chosen values.

    None or an empty choice means no restriction; knob values are compared as text.
    """
    keep = pd.Series(True, index=trials.index)
    if statuses:
        keep &= trials["status"].isin(list(statuses))
    for knob, values in (knobs or {}).items():
        if values:
            keep &= trials[knob].astype(str).isin([str(v) for v in values])
    return trials[keep]


def export_command(search: str, number: int, database: str = DEFAULT_URL) -> str:
    """``nasfcn export`` for one trial, quoted for a POSIX shell (search names may hold anything)."""
    parts = ["nasfcn", "export", "--search", search, "--trial", str(number)]
    if database != DEFAULT_URL:
        parts += ["--db", database]
    return shlex.join(parts)


@dataclass(frozen=True)
class BenchmarkBoard:
    """A benchmark as the leaderboard sees it: its runs and the statistics over their seeds."""

    search: str
    status: str  # the benchmark's: running, completed, interrupted
    database: str  # URL, password masked
    datasets: tuple[str, ...]  # in the benchmark's order
    seeds: int | None  # seeds per architecture and dataset, as configured
    epochs: int | None
    runs: pd.DataFrame  # benchmark_runs_frame plus each run's label
    results: pd.DataFrame  # benchmark_results: one row per architecture and dataset
    ranks: pd.DataFrame  # aggregate_ranks: one row per architecture, best first
    searches: pd.DataFrame  # searches_frame: every search in the database

    @property
    def columns(self) -> tuple[Column, ...]:
        return benchmark_columns(self.datasets)

    def table(self) -> pd.DataFrame:
        """The benchmark table's rows (``leaderboard.table.benchmark_table``), by rank over datasets."""
        return benchmark_table(self.results, self.ranks, self.datasets)

    def failures(self) -> pd.DataFrame:
        """The failed runs, with the error each one stopped with."""
        return self.runs[self.runs["status"] == "failed"].loc[:, ["label", "dataset", "seed", "error"]]

    def message(self) -> str | None:
        """A sentence for a benchmark that has nothing (or nothing yet) to compare; None otherwise."""
        return benchmark_message(self.runs, self.status)

    def summary(self) -> str:
        """One line: the plan and how its runs ended."""
        architectures = self.results["label"].nunique() if not self.results.empty else 0
        counts = self.runs["status"].value_counts()
        ended = ", ".join(f"{n} {str(s).replace('_', ' ')}" for s, n in counts.items()) or "none yet"
        plan = [_count(architectures, "architecture"), _count(len(self.datasets), "dataset")]
        if self.seeds:
            plan.append(_count(self.seeds, "seed"))
        epochs = f", {_count(self.epochs, 'epoch')} each" if self.epochs else ""
        return f"{' x '.join(plan)}{epochs} · {_count(len(self.runs), 'run')}: {ended}"

    def report_command(self) -> str:
        """``nasfcn benchmark report`` for this benchmark, quoted for a POSIX shell."""
        return report_command(self.search, self.database)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def load_benchmark_board(store: Store, search: str | None = None) -> BenchmarkBoard:
    """Read a benchmark (a search of kind ``benchmark``; the latest search when None)."""
    return _load_benchmark(store, search_details(store, search))


def _load_benchmark(store: Store, details: Mapping[str, Any]) -> BenchmarkBoard:
    config = details["config"]
    labels = plan_labels(config)
    runs = benchmark_runs_frame(store, details["name"])
    results = benchmark_results(runs, labels)
    runs = runs.assign(
        label=[
            labels.get(a) or (r if isinstance(r, str) and r else a)
            for a, r in zip(runs["arch_id"], runs["reference"], strict=True)
        ]
    )
    planned = [str(d) for d in config.get("datasets", [])]
    datasets = planned + sorted(set(map(str, runs["dataset"])) - set(planned))
    return BenchmarkBoard(
        search=details["name"],
        status=details["status"],
        database=store.masked_url,
        datasets=tuple(datasets),
        seeds=config.get("seeds"),
        epochs=config.get("epochs"),
        runs=runs,
        results=results,
        ranks=aggregate_ranks(results),
        searches=searches_frame(store),
    )


def benchmark_message(runs: pd.DataFrame, status: str = "completed") -> str | None:
    """Why a benchmark has nothing to compare yet: no runs, no run with a result, one seed only."""
    running = status == "running"
    if runs.empty:
        return (
            "No runs yet: this page fills in as the benchmark runs."
            if running
            else "This benchmark has no runs."
        )
    full = runs[runs["status"].isin(RESULT_STATUSES) & runs["best_miou"].notna()]
    if full.empty:
        counts = runs["status"].value_counts()
        parts = ", ".join(f"{n} {str(s).replace('_', ' ')}" for s, n in counts.items())
        wait = " yet" if running else ""
        return (
            f"No run has a validation result{wait} ({parts}): the failed runs are listed with their errors."
        )
    if full.groupby(["arch_id", "dataset"])["seed"].nunique().max() < 2:
        return (
            "One run per architecture and dataset so far: no spread, confidence interval or tie test "
            "until a second seed finishes."
        )
    return None


def report_command(search: str, database: str = DEFAULT_URL) -> str:
    """``nasfcn benchmark report`` for one benchmark, quoted for a POSIX shell."""
    out = re.sub(r"[^\w.-]+", "-", search).strip("-.") or "benchmark"
    parts = ["nasfcn", "benchmark", "report", search, "--out", f"{out}.md"]
    if database != DEFAULT_URL:
        parts += ["--db", database]
    return shlex.join(parts)
