"""Arenas in SQL: one search row of kind ``arena`` and every simulated trial, cost and epoch, in bulk.

An arena writes tens of thousands of trials at once (100 repeats x 64 trials x 6 pairs is
38,400), so it does not go through ``upsert_trial`` / ``record_epoch`` (a transaction per
row): it inserts each table's rows with one executemany per chunk, all in one transaction.
A failed write leaves the database as it was, and ``replace`` swaps an old arena of the same
name for the new one in that same transaction. Which strategy, scheduler and repeat a trial
belongs to is in its ``params_json`` (``{"arena": {...}}``): no column of its own, no migration.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from nasfcn.store._bulk import insert_architectures, insert_rows
from nasfcn.store._engine import Store
from nasfcn.store._queries import _frame, search_id
from nasfcn.store._schema import Epoch, Search, SearchLease, Trial, TrialCost
from nasfcn.store._writes import SearchExistsError, _json, now, recipe_key, software_versions

ARENA_KIND = "arena"
#: Columns of ``write_arena``'s ``trials`` frame (a trial row plus its cost); ``epochs`` has
#: number, epoch, val_miou, val_pixel_accuracy, seconds.
TRIAL_FIELDS = (
    "number",
    "arch_id",
    "trial_key",
    "genotype_json",
    "params_json",
    "seed",
    "status",
    "epochs_trained",
    "best_epoch",
    "best_miou",
    "best_pixel_accuracy",
    "final_miou",
    "error",
    "started_at",
    "finished_at",
)
COST_FIELDS = ("params", "flops", "latency_ms", "peak_memory_mb", "device", "input")
EPOCH_FIELDS = ("epoch", "val_miou", "val_pixel_accuracy", "seconds")


def check_arena_name(store: Store, name: str, replace: bool = False) -> None:
    """Refuse ``name`` if a search holds it, unless it is an arena and ``replace`` is set."""
    with store.session_scope() as session:
        _check_free(session, store, name, replace)


def write_arena(
    store: Store,
    name: str,
    search: Mapping[str, Any],
    archs: Mapping[str, str],
    trials: pd.DataFrame,
    epochs: pd.DataFrame,
    replace: bool = False,
) -> int:
    """Store one arena: ``search`` (dataset, space_name, space_yaml, config, recipe), the
    architectures' JSON by id, ``trials`` (``TRIAL_FIELDS`` + ``COST_FIELDS``) and ``epochs``
    (by trial number). One transaction; returns the search id."""
    with store.session_scope() as session:
        old = _check_free(session, store, name, replace)
        if old is not None:
            _delete_search(session, old)
        created = now()
        row = Search(
            name=name,
            kind=ARENA_KIND,
            space_name=search.get("space_name"),
            space_yaml=search.get("space_yaml"),
            dataset=search["dataset"],
            config_json=_json(dict(search.get("config") or {})),
            recipe_json=_json(dict(search.get("recipe") or {})),
            versions_json=_json(software_versions()),
            status="completed",
            created_at=created,
            started_at=created,
            finished_at=created,
        )
        session.add(row)
        session.flush()
        sid = row.id
        insert_architectures(session, archs)
        fixed = {"search_id": sid, "dataset": search["dataset"], "recipe_key": recipe_key(search["recipe"])}
        insert_rows(session, Trial, ({**fixed, **r} for r in _records(trials, TRIAL_FIELDS)))
        ids = dict(session.execute(select(Trial.number, Trial.id).where(Trial.search_id == sid)).all())
        costs = _records(trials, ("number", "arch_id", *COST_FIELDS))
        insert_rows(session, TrialCost, _by_trial_id(costs, ids))
        insert_rows(session, Epoch, _by_trial_id(_records(epochs, ("number", *EPOCH_FIELDS)), ids))
        return sid


def arena_trials_frame(store: Store, name: str) -> pd.DataFrame:
    """trial_id, strategy, scheduler and repeat of every trial of the arena ``name``."""
    statement = select(Trial.id.label("trial_id"), Trial.params_json).where(
        Trial.search_id == search_id(store, name)
    )
    frame = _frame(store, statement)
    facts = [json.loads(text or "{}").get(ARENA_KIND, {}) for text in frame["params_json"]]
    return pd.DataFrame(
        {
            "trial_id": frame["trial_id"],
            "strategy": [f.get("strategy") for f in facts],
            "scheduler": [f.get("scheduler") for f in facts],
            "repeat": pd.array([f.get("repeat") for f in facts], dtype="Int64"),
        }
    )


def _check_free(session: Session, store: Store, name: str, replace: bool) -> int | None:
    """The id of the arena ``replace`` swaps out, None when the name is free; else refused."""
    found = session.execute(select(Search.id, Search.kind).where(Search.name == name)).one_or_none()
    if found is None:
        return None
    if found.kind != ARENA_KIND:
        raise SearchExistsError(
            f"{name!r} in {store.masked_url} is a {found.kind}, not an arena: choose another --name "
            "(--replace only replaces an arena)"
        )
    if not replace:
        raise SearchExistsError(
            f"an arena named {name!r} already exists in {store.masked_url}: choose another --name, "
            "or --replace it"
        )
    return int(found.id)


def _delete_search(session: Session, sid: int) -> None:
    """Every row of one search, children first (SQLite cascades only with foreign keys on).

    Deleting a trial makes the database look for trials ``cached_from`` it (its foreign key
    sets them to NULL); the schema has no index there, so each deleted trial scanned every
    trial: minutes for an arena. An index that lives only inside this transaction makes each
    lookup one probe (it holds a lock on the trials for the transaction's few seconds).
    """
    index = f"ix_tmp_arena_{int(sid)}_cached_from"  # not in the schema's metadata: plain DDL
    session.execute(text(f"CREATE INDEX {index} ON trials (cached_from)"))
    trials = select(Trial.id).where(Trial.search_id == sid).scalar_subquery()
    session.execute(delete(Epoch).where(Epoch.trial_id.in_(trials)))
    session.execute(delete(TrialCost).where(TrialCost.trial_id.in_(trials)))
    session.execute(delete(Trial).where(Trial.search_id == sid))
    session.execute(delete(SearchLease).where(SearchLease.search_id == sid))
    session.execute(delete(Search).where(Search.id == sid))
    session.execute(text(f"DROP INDEX {index}"))


def _by_trial_id(rows: Iterator[dict[str, Any]], ids: Mapping[int, int]) -> Iterator[dict[str, Any]]:
    """Rows keyed by trial number -> the same rows keyed by the trial's id."""
    for row in rows:
        row["trial_id"] = ids[row.pop("number")]
        yield row


def _records(frame: pd.DataFrame, columns: Sequence[str]) -> Iterator[dict[str, Any]]:
    """The rows as dicts of plain Python values (drivers refuse numpy scalars); NaN is None."""
    data = [_plain(frame[c]) for c in columns]
    for values in zip(*data, strict=True):
        yield dict(zip(columns, values, strict=True))


def _plain(column: pd.Series) -> list[Any]:
    """One column as Python values, converted column-wise (a value at a time costs seconds)."""
    if pd.api.types.is_datetime64_any_dtype(column):
        return [None if pd.isna(v) else v.to_pydatetime() for v in column]
    values = column.astype(object)
    if pd.api.types.is_float_dtype(column):
        values = values.where(np.isfinite(column.to_numpy(dtype=float)), None)
    return list(values.where(column.notna(), None).tolist())
