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
from sqlalchemy import JSON, ColumnElement, Select, cast, delete, func, select
from sqlalchemy.orm import Session

from nasfcn.store._bulk import CHUNK, insert_architectures, insert_rows
from nasfcn.store._engine import Store
from nasfcn.store._queries import (
    _KNOBS,
    EPOCH_COLUMNS,
    _frame,
    _knobs,
    _rank,
    leaderboard_frame,
    parse_times,
    search_id,
    times_as_text,
    trial_columns,
)
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


#: What ``arena_trials_frame`` reads of each trial's ``params_json`` ``{"arena": {...}}``.
_REPLAY_FIELDS = ("strategy", "scheduler", "repeat")


def arena_trials_frame(store: Store, name: str) -> pd.DataFrame:
    """trial_id, strategy, scheduler and repeat of every trial of the arena ``name``.

    SQLite and PostgreSQL take the three fields out of the JSON text themselves: parsing 10^5
    texts in Python was a second of the leaderboard's build."""
    fields = _replay_fields(store.engine.dialect.name)
    where = Trial.search_id == search_id(store, name)
    if fields is not None:
        frame = _frame(store, select(Trial.id.label("trial_id"), *fields).where(where))
        repeat = pd.to_numeric(frame["repeat"]).astype("Int64")  # PostgreSQL's comes as text
        return frame.astype({"strategy": object, "scheduler": object}).assign(repeat=repeat)
    frame = _frame(store, select(Trial.id.label("trial_id"), Trial.params_json).where(where))
    facts = [json.loads(text or "{}").get(ARENA_KIND, {}) for text in frame["params_json"]]
    return pd.DataFrame(
        {
            "trial_id": frame["trial_id"],
            "strategy": [f.get("strategy") for f in facts],
            "scheduler": [f.get("scheduler") for f in facts],
            "repeat": pd.array([f.get("repeat") for f in facts], dtype="Int64"),
        }
    )


def arena_leaderboard_frame(store: Store, name: str, keep: Sequence[str] = ()) -> pd.DataFrame:
    """``leaderboard_frame`` of the arena ``name`` with ``arena_trials_frame``'s strategy,
    scheduler and repeat, read in the same statement where the database can; there each
    trial's genotype and cost come from one trial of its architecture (``_PER_ARCHITECTURE``)."""
    fields = _replay_fields(store.engine.dialect.name)
    if fields is None:
        frame = leaderboard_frame(store, name, keep)
        return frame.merge(arena_trials_frame(store, name), on="trial_id", how="left")
    own = times_as_text([c for c in trial_columns() if c.key not in _PER_ARCHITECTURE])
    # in number order: SQLite then walks the (search, number) index, the order the rows were
    # written in, not the one it would pick by itself (a third faster at 10^5 trials)
    statement = select(*own, *fields).where(Trial.search_id == search_id(store, name)).order_by(Trial.number)
    frame = _frame(store, statement)
    frame = parse_times(frame.merge(_architecture_columns(store, frame), on="arch_id", how="left"))
    frame["seconds"] = (frame["finished_at"] - frame["started_at"]).dt.total_seconds()
    repeat = pd.to_numeric(frame["repeat"]).astype("Int64")  # PostgreSQL's comes as text
    frame = frame.astype({"strategy": object, "scheduler": object}).assign(repeat=repeat)
    return _rank(frame, (*keep, *_REPLAY_FIELDS))


#: What an arena's trials take from their architecture: ``nasfcn.arena``'s records write each
#: trial's genotype and cost from the table's architecture (``write_arena``'s ``trials``).
_PER_ARCHITECTURE = ("params", "flops", "latency_ms", "peak_memory_mb", "genotype_json")


def _architecture_columns(store: Store, trials: pd.DataFrame) -> pd.DataFrame:
    """arch_id, ``_PER_ARCHITECTURE`` and the genotype's knobs, read from one trial per
    architecture (its first): 10^5 simulated trials re-run a table's few hundred networks, so
    reading their genotype and cost per trial was most of an arena board's read."""
    firsts = trials.groupby("arch_id")["trial_id"].min().tolist()
    shared = [c for c in trial_columns() if c.key in _PER_ARCHITECTURE]
    statement = select(Trial.arch_id, *shared).outerjoin(TrialCost, TrialCost.trial_id == Trial.id)
    frame = _frame_of_trials(store, statement, firsts)
    knobs = [_knobs(json.loads(text)) for text in frame["genotype_json"]]
    for k, knob in enumerate(_KNOBS):
        frame[knob] = [row[k] for row in knobs]
    return frame


def _replay_fields(dialect: str) -> list[ColumnElement[Any]] | None:
    """``_REPLAY_FIELDS`` read in SQL, where the database has JSON functions (None: in Python)."""
    if dialect == "sqlite":
        return [func.json_extract(Trial.params_json, f"$.{ARENA_KIND}.{f}").label(f) for f in _REPLAY_FIELDS]
    if dialect == "postgresql":
        document = cast(Trial.params_json, JSON)
        return [func.json_extract_path_text(document, ARENA_KIND, f).label(f) for f in _REPLAY_FIELDS]
    return None


def arena_curves_frame(
    store: Store, name: str, columns: Sequence[str] = EPOCH_COLUMNS, trials: pd.DataFrame | None = None
) -> pd.DataFrame:
    """``epochs_frame`` of one trial per (architecture, table seed) of the arena ``name``: the one
    that trained the most epochs (ties: the first), with its ``seed``.

    A simulated trial's epochs are the first ``epochs_trained`` of its architecture's run for its
    table seed (``nasfcn.arena``'s records), so these few hundred curves hold every trial's: a
    board reads them instead of one curve per trial (10^5 trials, 2 x 10^6 epochs). ``trials``:
    the arena's trials (trial_id, arch_id, seed, epochs_trained) where the caller has read them;
    the runs are then chosen from them, not by a window over every trial in SQL."""
    unknown = [c for c in columns if c not in EPOCH_COLUMNS]
    if unknown:
        raise ValueError(f"unknown epoch columns {unknown}; valid: {', '.join(EPOCH_COLUMNS)}")
    statement = (
        select(
            Epoch.trial_id,
            Trial.number,
            Trial.arch_id,
            Trial.status,
            Trial.seed,
            *(getattr(Epoch, c) for c in columns),
        )
        .join(Trial, Trial.id == Epoch.trial_id)
        .order_by(Epoch.trial_id, Epoch.epoch)
    )
    if trials is not None:
        return _frame_of_trials(store, statement, longest_runs(trials))
    order = func.row_number().over(
        partition_by=(Trial.arch_id, Trial.seed),
        order_by=(func.coalesce(Trial.epochs_trained, 0).desc(), Trial.id),
    )
    ranked = (
        select(Trial.id, order.label("place")).where(Trial.search_id == search_id(store, name)).subquery()
    )
    longest = select(ranked.c.id).where(ranked.c.place == 1)
    return _frame(store, statement.where(Trial.id.in_(longest)))


def longest_runs(trials: pd.DataFrame) -> list[int]:
    """The trial ids ``arena_curves_frame`` reads: per (arch_id, seed) the trial with the most
    ``epochs_trained`` (None counts as 0; ties: the lowest trial_id), in id order."""
    trained = trials["epochs_trained"].fillna(0).astype(float)
    ranked = trials.assign(trained=trained).sort_values(
        ["trained", "trial_id"], ascending=[False, True], kind="stable"
    )
    return sorted(int(t) for t in ranked.drop_duplicates(["arch_id", "seed"])["trial_id"])


def _frame_of_trials(store: Store, statement: Select[Any], ids: Sequence[int]) -> pd.DataFrame:
    """``statement`` for the trials ``ids``: an IN list per ``CHUNK`` ids (backends cap parameters)."""
    parts = [
        _frame(store, statement.where(Trial.id.in_(ids[start : start + CHUNK])))
        for start in range(0, max(len(ids), 1), CHUNK)
    ]
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


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

    Each deleted trial makes the database look for trials ``cached_from`` it: one probe of
    ``ix_trials_cached_from`` (migration 0008; before it, a scan of every trial per row).
    """
    trials = select(Trial.id).where(Trial.search_id == sid).scalar_subquery()
    session.execute(delete(Epoch).where(Epoch.trial_id.in_(trials)))
    session.execute(delete(TrialCost).where(TrialCost.trial_id.in_(trials)))
    session.execute(delete(Trial).where(Trial.search_id == sid))
    session.execute(delete(SearchLease).where(SearchLease.search_id == sid))
    session.execute(delete(Search).where(Search.id == sid))


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
