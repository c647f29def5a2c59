"""Reads for tabular benchmarks: a table's runs with their cost, and every epoch of each run."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from sqlalchemy import func, select

from nasfcn.store._engine import Store
from nasfcn.store._queries import NoSuchSearchError, _frame
from nasfcn.store._schema import Epoch, Search, Trial, TrialCost


def table_facts(store: Store, name: str) -> dict[str, Any]:
    """A tabulation's stored facts (kind, space, dataset, config, recipe, versions, dates)."""
    with store.session_scope() as session:
        search = session.execute(select(Search).where(Search.name == name)).scalar_one_or_none()
        if search is None:
            names = session.execute(select(Search.name).where(Search.kind == "table")).scalars().all()
            known = ", ".join(sorted(names)) or "none yet (build one with `nasfcn tabulate`)"
            raise NoSuchSearchError(f"no table named {name!r} in {store.masked_url}; tables there: {known}")
        return {
            "id": search.id,
            "name": search.name,
            "kind": search.kind,
            "space_name": search.space_name,
            "space_yaml": search.space_yaml,
            "dataset": search.dataset,
            "status": search.status,
            "config": json.loads(search.config_json or "{}"),
            "recipe": json.loads(search.recipe_json or "{}"),
            "versions": json.loads(search.versions_json or "{}"),
            "created_at": search.created_at,
            "finished_at": search.finished_at,
        }


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
