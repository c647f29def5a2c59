"""Reads for tabular benchmarks: a table's runs with their cost, and every epoch of each run."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import func, select

from nasfcn.store._engine import Store
from nasfcn.store._queries import NoSuchSearchError, _frame
from nasfcn.store._schema import Epoch, Search, Trial, TrialCost
from nasfcn.store._writes import get_search


def table_facts(store: Store, name: str) -> dict[str, Any]:
    """A tabulation's stored facts (``get_search``'s); a missing name lists the tables there."""
    facts = get_search(store, name)
    if facts is None:
        with store.session_scope() as session:
            names = session.execute(select(Search.name).where(Search.kind == "table")).scalars().all()
        known = ", ".join(sorted(names)) or "none yet (build one with `nasfcn tabulate`)"
        raise NoSuchSearchError(f"no table named {name!r} in {store.masked_url}; tables there: {known}")
    return facts


def table_runs_frame(store: Store, search_id: int) -> pd.DataFrame:
    """One row per run (trial) of a table: architecture, seed, status, error and cost figures."""
    statement = (
        select(
            Trial.id.label("trial_id"),
            Trial.number,
            Trial.arch_id,
            Trial.seed,
            Trial.dataset,
            Trial.status,
            Trial.error,
            Trial.reference,
            Trial.genotype_json,
            TrialCost.params,
            TrialCost.flops,
            TrialCost.latency_ms,
            TrialCost.peak_memory_mb,
            TrialCost.device,
            TrialCost.input,
        )
        .outerjoin(TrialCost, TrialCost.trial_id == Trial.id)
        .where(Trial.search_id == search_id)
        .order_by(Trial.number)
    )
    return _frame(store, statement)


def table_epochs_frame(store: Store, search_id: int) -> pd.DataFrame:
    """Every epoch of every run of a table; a cached run shows the epochs of the run it reused."""
    source = func.coalesce(Trial.cached_from, Trial.id)
    statement = (
        select(
            Trial.id.label("trial_id"),
            Epoch.epoch,
            Epoch.val_miou,
            Epoch.val_pixel_accuracy,
            Epoch.train_loss,
            Epoch.seconds,
            Epoch.per_class_iou_json,
        )
        .join(Epoch, Epoch.trial_id == source)
        .where(Trial.search_id == search_id)
        .order_by(Trial.id, Epoch.epoch)
    )
    return _frame(store, statement)
