"""Reads for repeated runs: a benchmark's runs, and seed spread across every search."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pandas as pd
from sqlalchemy import func, select

from nasfcn.store._engine import Store
from nasfcn.store._queries import NoSuchSearchError, _frame, search_id
from nasfcn.store._schema import RESULT_STATUSES, Architecture, Search, Trial, TrialCost


def benchmark_runs_frame(store: Store, name: str | None = None) -> pd.DataFrame:
    """Every run of a benchmark (the latest when ``name`` is None): architecture x dataset x seed."""
    if name is None:
        with store.session_scope() as session:
            name = session.execute(
                select(Search.name)
                .where(Search.kind == "benchmark")
                .order_by(Search.created_at.desc(), Search.id.desc())
                .limit(1)
            ).scalar_one_or_none()
        if name is None:
            raise NoSuchSearchError(f"no benchmarks in {store.masked_url} yet: run `nasfcn benchmark` first")
    sid = search_id(store, name)
    statement = (
        select(
            Trial.id.label("trial_id"),
            Trial.number,
            Trial.arch_id,
            Trial.reference,
            Trial.dataset,
            Trial.seed,
            Trial.status,
            Trial.best_miou,
            Trial.best_pixel_accuracy,
            Trial.epochs_trained,
            Trial.error,
            TrialCost.params,
            TrialCost.flops,
            TrialCost.latency_ms,
            Trial.genotype_json,
        )
        .outerjoin(TrialCost, TrialCost.trial_id == Trial.id)
        .where(Trial.search_id == sid)
        .order_by(Trial.number)
    )
    return _frame(store, statement)


def seed_spread_frame(
    store: Store, dataset: str, repeated_only: bool = False, arch_ids: Sequence[str] | None = None
) -> pd.DataFrame:
    """Per network + training knobs + recipe (seed aside) on ``dataset``: its seeds' mIoU spread.

    Across all searches and benchmarks; only full runs (completed or cached) count, and a
    seed counts once however often it ran. ``trial_key`` identifies network and knobs.
    ``repeated_only``: only networks run with two seeds or more (what a board shows a spread
    for), chosen in SQL, so a search of 10^5 single runs sends no rows. ``arch_ids``: only
    these networks' runs, found through ``ix_trials_arch``: a page of a live table reads the
    runs of its hundred rows, never every trial of the dataset (without statistics SQLite would
    rather walk ``ix_trials_dataset_best`` over all of them: ``|| ''``, SQLite's documented way,
    keeps the dataset test off that index; PostgreSQL plans it alike).
    """
    full = (
        Trial.dataset == dataset if arch_ids is None else Trial.dataset.concat("") == dataset,
        Trial.status.in_(RESULT_STATUSES),
        Trial.best_miou.is_not(None),
        Trial.extends.is_(None),  # a final run trains more epochs: another recipe than its search's
        *(() if arch_ids is None else (Trial.arch_id.in_(sorted(set(arch_ids))),)),
    )
    # one row per network, search and seed (its best run), not per run: an arena's 10^5 runs
    # re-run a few hundred networks on a few table seeds
    keys = (Trial.arch_id, Trial.trial_key, Trial.search_id, Trial.seed)
    grouped = select(*keys, func.max(Trial.best_miou).label("best_miou")).where(*full).group_by(*keys)
    statement = grouped
    if repeated_only:  # chosen from the grouped rows: one pass over the dataset's runs, not two
        runs = grouped.cte("runs")
        seeded = (
            select(runs.c.trial_key)
            .group_by(runs.c.trial_key)
            .having(func.count(func.distinct(runs.c.seed)) >= 2)
        )
        statement = select(runs).where(runs.c.trial_key.in_(seeded))
    frame = _frame(store, statement)
    columns = ["arch_id", "trial_key", "recipe", "seeds", "miou_mean", "miou_std"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    searches = select(Search.id, Search.recipe_json).where(Search.id.in_(set(frame["search_id"].tolist())))
    with store.session_scope() as session:
        recipes = {sid: _without_seed(text) for sid, text in session.execute(searches).all()}
    frame["recipe"] = frame["search_id"].map(recipes)
    per_seed = frame.groupby(["arch_id", "trial_key", "recipe", "seed"], as_index=False)["best_miou"].max()
    grouped = per_seed.groupby(["arch_id", "trial_key", "recipe"])["best_miou"]
    spread = pd.DataFrame(
        {"seeds": grouped.size(), "miou_mean": grouped.mean(), "miou_std": grouped.std(ddof=1)}
    )
    return spread.reset_index().sort_values(
        ["miou_mean", "arch_id"], ascending=[False, True], ignore_index=True
    )


def spread_recipe(store: Store, search: str) -> str:
    """A search's recipe as ``seed_spread_frame``'s ``recipe`` column writes it (seed aside),
    so a search's trials find the repeated runs trained the same way."""
    with store.session_scope() as session:
        text = session.execute(select(Search.recipe_json).where(Search.name == search)).scalar_one_or_none()
    return _without_seed(text)


def _without_seed(recipe_json: str | None) -> str:
    recipe = json.loads(recipe_json or "{}")
    recipe.pop("seed", None)
    return json.dumps(recipe, sort_keys=True)


def architecture_genotype(store: Store, arch_id: str) -> str | None:
    """The stored genotype JSON of an architecture id, or None if the database has none."""
    with store.session_scope() as session:
        return session.execute(
            select(Architecture.genotype_json).where(Architecture.arch_id == arch_id)
        ).scalar_one_or_none()
