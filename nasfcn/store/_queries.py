"""Reads: pandas frames for the CLI, the leaderboard and the export (never ORM objects)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import ColumnElement, Select, Selectable, String, case, func, select, type_coerce
from sqlalchemy.orm import QueryableAttribute

from nasfcn.store._engine import Store, StoreError
from nasfcn.store._schema import Architecture, Epoch, Search, Trial, TrialCost

#: Columns of the leaderboard frame, in order.
LEADERBOARD_COLUMNS = (
    "rank",
    "trial_id",
    "number",
    "arch_id",
    "status",
    "best_miou",
    "best_pixel_accuracy",
    "final_miou",
    "params",
    "flops",
    "latency_ms",
    "peak_memory_mb",
    "peak_train_memory_mb",
    "train_device",
    "reference",
    "epochs_trained",
    "seconds",
    "stages",
    "width",
    "kernels",
    "skip",
    "upsample",
    "attention",
    "downsample",
    "lr",
    "seed",
    "cached_from",
    "confirms",
    "extends",
    "test_miou",
    "error",
    "checkpoint",
    "genotype_json",
)
#: name -> (column, direction) for Pareto fronts and sorting.
OBJECTIVES = {
    "miou": ("best_miou", "max"),
    "pixel_accuracy": ("best_pixel_accuracy", "max"),
    "latency_ms": ("latency_ms", "min"),
    "params": ("params", "min"),
    "flops": ("flops", "min"),
    "peak_memory_mb": ("peak_memory_mb", "min"),
}


class NoSuchSearchError(StoreError):
    """The named search is not in the database (the message lists the ones that are)."""


def _frame(store: Store, statement: Selectable) -> pd.DataFrame:
    with store.engine.connect() as connection:
        return pd.read_sql(statement, connection)


def _count_status(status: str) -> ColumnElement[Any]:
    return func.sum(case((Trial.status == status, 1), else_=0))


def searches_frame(store: Store) -> pd.DataFrame:
    """One row per search: counts by status and the best val mIoU so far."""
    trials = (
        select(
            Trial.search_id,
            func.count(Trial.id).label("trials"),
            _count_status("completed").label("completed"),
            _count_status("stopped_early").label("stopped_early"),
            _count_status("failed").label("failed"),
            _count_status("rejected_by_constraint").label("rejected"),
            _count_status("cached").label("cached"),
            func.max(Trial.best_miou).label("best_miou"),
        )
        .group_by(Trial.search_id)
        .subquery()
    )
    statement = (
        select(
            Search.id.label("search_id"),
            Search.name,
            Search.kind,
            Search.space_name,
            Search.dataset,
            Search.status,
            Search.created_at,
            Search.finished_at,
            trials.c.trials,
            trials.c.completed,
            trials.c.stopped_early,
            trials.c.failed,
            trials.c.rejected,
            trials.c.cached,
            trials.c.best_miou,
        )
        .outerjoin(trials, trials.c.search_id == Search.id)
        .order_by(Search.created_at.desc(), Search.id.desc())
    )
    frame = _frame(store, statement)
    counts = ["trials", "completed", "stopped_early", "failed", "rejected", "cached"]
    frame[counts] = frame[counts].fillna(0).astype(int)
    return frame


def search_id(store: Store, name: str | None = None) -> int:
    """The id of the named search, or of the latest one when ``name`` is None."""
    with store.session_scope() as session:
        if name is None:
            found = session.execute(
                select(Search.id).order_by(Search.created_at.desc(), Search.id.desc()).limit(1)
            ).scalar_one_or_none()
            if found is None:
                raise NoSuchSearchError(
                    f"no searches in {store.masked_url} yet: start one with `nasfcn search`"
                )
            return found
        found = session.execute(select(Search.id).where(Search.name == name)).scalar_one_or_none()
        if found is None:
            names = session.execute(select(Search.name).order_by(Search.id)).scalars().all()
            known = ", ".join(names[-10:]) if names else "none yet"
            raise NoSuchSearchError(f"no search named {name!r} in {store.masked_url}; searches: {known}")
        return found


def leaderboard_frame(store: Store, search: str | None = None, keep: Sequence[str] = ()) -> pd.DataFrame:
    """One row per trial of a search, ranked by best val mIoU (rank is NaN without a result);
    ``keep``: more of ``trial_columns``' (e.g. ``started_at``) after the usual ones."""
    return ranked_trials(store, search, keep)


def ranked_trials(
    store: Store, search: str | None, keep: Sequence[str] = (), extra: Sequence[ColumnElement[Any]] = ()
) -> pd.DataFrame:
    """``leaderboard_frame``, with the ``extra`` labelled SQL columns read in the same statement."""
    statement = (
        select(*times_as_text(trial_columns()), *extra)
        .outerjoin(TrialCost, TrialCost.trial_id == Trial.id)
        .where(Trial.search_id == search_id(store, search))
    )
    frame = parse_times(_frame(store, statement))
    return _rank(_with_knobs(frame), (*keep, *(str(c.key) for c in extra)))


_TIMES = ("started_at", "finished_at")


def times_as_text(columns: Sequence[Any]) -> list[Any]:
    """``columns`` with the trial's times read as text, for ``parse_times``: SQLite's driver
    parsing each of 2 x 10^5 values was a fifth of reading an arena's trials."""
    return [type_coerce(c, String).label(c.key) if c.key in _TIMES else c for c in columns]


def parse_times(frame: pd.DataFrame) -> pd.DataFrame:
    """The times ``times_as_text`` read, parsed by pandas in one step per column."""
    for column in _TIMES:
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    return frame


def trial_columns() -> tuple[ColumnElement[Any] | QueryableAttribute[Any], ...]:
    """What a leaderboard row reads of a trial and its cost (``leaderboard_frame`` and the
    live app's pages), before ``_with_knobs`` parses the genotype."""
    return (
        Trial.id.label("trial_id"),
        Trial.number,
        Trial.arch_id,
        Trial.status,
        Trial.best_miou,
        Trial.best_pixel_accuracy,
        Trial.final_miou,
        TrialCost.params,
        TrialCost.flops,
        TrialCost.latency_ms,
        TrialCost.peak_memory_mb,
        Trial.peak_train_memory_mb,
        Trial.train_device,
        Trial.reference,
        Trial.epochs_trained,
        Trial.started_at,
        Trial.finished_at,
        Trial.seed,
        Trial.cached_from,
        Trial.confirms,
        Trial.extends,
        Trial.test_miou,
        Trial.error,
        Trial.checkpoint,
        Trial.genotype_json,
    )


#: The knob columns ``_with_knobs`` adds, in ``_knobs``' order.
_KNOBS = ("stages", "width", "kernels", "skip", "upsample", "downsample", "attention", "lr")


def _with_knobs(frame: pd.DataFrame) -> pd.DataFrame:
    texts = frame["genotype_json"].tolist()
    # parsed once per distinct genotype: 10^5 trials (an arena's, a search's re-seeded runs)
    # hold far fewer networks, and a JSON parse per trial was a second of a big board's build
    knobs = {text: _knobs(json.loads(text)) for text in set(texts)}
    for k, name in enumerate(_KNOBS):
        frame[name] = [knobs[text][k] for text in texts]
    started = pd.to_datetime(frame["started_at"], utc=True)
    finished = pd.to_datetime(frame["finished_at"], utc=True)
    frame["seconds"] = (finished - started).dt.total_seconds()
    return frame


def _knobs(g: dict[str, Any]) -> tuple[Any, ...]:
    """One genotype's ``_KNOBS``."""
    attention = g["attention"]["type"]
    return (
        g["encoder"]["stages"],
        g["encoder"]["width"],
        "/".join(map(str, g["encoder"]["kernel_size"])),
        g["skip"],
        g["upsample"],
        g["encoder"]["downsample"],
        attention if attention == "none" else f"{attention}@{g['attention']['where']}",
        g.get("train", {}).get("lr", np.nan),
    )


def _rank(frame: pd.DataFrame, keep: Sequence[str] = ()) -> pd.DataFrame:
    frame = frame.sort_values(
        ["best_miou", "latency_ms", "number"], ascending=[False, True, True], na_position="last"
    ).reset_index(drop=True)
    frame["rank"] = frame["best_miou"].rank(ascending=False, method="min")
    return frame.loc[:, [*LEADERBOARD_COLUMNS, *keep]]


def rank_trials(frame: pd.DataFrame, keep: Sequence[str] = ()) -> pd.DataFrame:
    """Trial rows (``trial_columns``, knobs parsed, e.g. ``trials_since``'s) ordered and ranked as
    ``leaderboard_frame``'s, with its columns and then ``keep``."""
    return _rank(frame.copy(), keep)


#: The per-epoch columns ``epochs_frame`` reads by default.
EPOCH_COLUMNS = (
    "epoch",
    "train_loss",
    "val_miou",
    "val_pixel_accuracy",
    "per_class_iou_json",
    "seconds",
    "lr",
    "images_per_s",
)


def epochs_frame(
    store: Store,
    search: str | None = None,
    trial_ids: Sequence[int] | None = None,
    columns: Sequence[str] = EPOCH_COLUMNS,
) -> pd.DataFrame:
    """Per-epoch history of a search's trials (or of the given trials): the trial's id, number,
    arch_id and status, then ``columns`` of ``EPOCH_COLUMNS`` (a curve needs only two of them,
    and at 10^6 epochs the per-class texts alone are most of the read)."""
    unknown = [c for c in columns if c not in EPOCH_COLUMNS]
    if unknown:
        raise ValueError(f"unknown epoch columns {unknown}; valid: {', '.join(EPOCH_COLUMNS)}")
    statement = select(
        Epoch.trial_id,
        Trial.number,
        Trial.arch_id,
        Trial.status,
        *(getattr(Epoch, c) for c in columns),
    ).join(Trial, Trial.id == Epoch.trial_id)
    if trial_ids is not None:
        statement = statement.where(Trial.id.in_(list(trial_ids)))
    else:
        statement = statement.where(Trial.search_id == search_id(store, search))
    return _frame(store, statement.order_by(Epoch.trial_id, Epoch.epoch))


def pareto_front(frame: pd.DataFrame, objectives: Sequence[str] = ("miou", "latency_ms")) -> pd.Series:
    """Boolean mask of the rows no other row beats on every objective (NaN rows never count)."""
    columns, signs = [], []
    for name in objectives:
        if name not in OBJECTIVES:
            raise ValueError(f"unknown objective {name!r}; valid: {', '.join(OBJECTIVES)}")
        column, direction = OBJECTIVES[name]
        columns.append(column)
        signs.append(1.0 if direction == "min" else -1.0)
    values = frame[columns].astype(float).to_numpy() * np.array(signs)  # all minimized now
    valid = ~np.isnan(values).any(axis=1)
    if len(columns) == 2:
        return pd.Series(_front_2d(values, valid), index=frame.index, name="pareto")
    mask = np.zeros(len(frame), dtype=bool)
    candidates = np.flatnonzero(valid)
    for i in candidates:
        others = values[candidates]
        dominated = np.any(np.all(others <= values[i], axis=1) & np.any(others < values[i], axis=1))
        mask[i] = not dominated
    return pd.Series(mask, index=frame.index, name="pareto")


def _front_2d(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """The non-dominated rows of two minimised objectives in O(n log n), not O(n^2): sorted by
    the first, a row is on the front iff its second is the least among rows with its first value
    and below every row with a smaller first value (equal rows do not dominate each other)."""
    mask = np.zeros(len(values), dtype=bool)
    rows = np.flatnonzero(valid)
    if len(rows) == 0:
        return mask
    a, b = values[rows, 0], values[rows, 1]
    order = np.lexsort((b, a))
    a, b, rows = a[order], b[order], rows[order]
    starts = np.flatnonzero(np.r_[True, a[1:] != a[:-1]])  # each run of equal first values
    least = np.minimum.reduceat(b, starts)  # its least second value
    before = np.r_[np.inf, np.minimum.accumulate(least)[:-1]]  # least second over smaller firsts
    group = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(a)]))
    mask[rows] = (b == least[group]) & (b < before[group])
    return mask


def pareto_frame(
    store: Store, search: str | None = None, objectives: Sequence[str] = ("miou", "latency_ms")
) -> pd.DataFrame:
    """The Pareto-optimal trials of a search for the chosen objectives."""
    frame = leaderboard_frame(store, search)
    return frame[pareto_front(frame, objectives)].reset_index(drop=True)


def best_per_architecture(store: Store, dataset: str, top: int | None = None) -> pd.DataFrame:
    """Across all searches on ``dataset``: the best trial of every arch_id, with that trial's cost.

    ``top``: only the architectures with the ``top`` best results (ties by arch_id), chosen in
    SQL, so a plot of the best few reads their runs and never the dataset's every trial."""
    columns: list[Any] = [
        Trial.arch_id,
        Trial.id.label("trial_id"),
        Search.name.label("search"),
        Trial.best_miou,
        Trial.best_pixel_accuracy,
        Trial.epochs_trained,
        TrialCost.params,
        TrialCost.flops,
        TrialCost.latency_ms,
        Trial.genotype_json,
    ]
    statement = (
        select(*columns)
        .join(Search, Search.id == Trial.search_id)
        .outerjoin(TrialCost, TrialCost.trial_id == Trial.id)
        .where(Trial.dataset == dataset, Trial.best_miou.is_not(None))
    )
    if top is not None:
        return _best_of_leaders(store, dataset, statement, int(top))
    frame = _frame(store, statement)
    if frame.empty:
        return frame.assign(runs=pd.Series(dtype=int))
    runs = frame.groupby("arch_id").size().rename("runs")
    best = frame.sort_values(["best_miou", "trial_id"], ascending=[False, True]).drop_duplicates("arch_id")
    return best.join(runs, on="arch_id").reset_index(drop=True)


def _best_of_leaders(store: Store, dataset: str, statement: Select[Any], top: int) -> pd.DataFrame:
    """``best_per_architecture`` of the ``top`` architectures, in one statement: they and their
    run counts grouped in SQL, then only runs at least as good as the worst of their bests (an
    index range on the dataset's results), never every run of theirs (an arena's leaders have
    10^4 each)."""
    best = func.max(Trial.best_miou)
    leaders = (
        select(Trial.arch_id, best.label("best"), func.count().label("runs"))
        .where(Trial.dataset == dataset, Trial.best_miou.is_not(None))
        .group_by(Trial.arch_id)
        .order_by(best.desc(), Trial.arch_id)
        .limit(max(0, top))
        .cte("leaders")
    )
    floor = select(func.min(leaders.c.best)).scalar_subquery()
    statement = statement.add_columns(leaders.c.best.label("leader_best"), leaders.c.runs)
    frame = _frame(
        store, statement.join(leaders, leaders.c.arch_id == Trial.arch_id).where(Trial.best_miou >= floor)
    )
    frame = frame[frame["best_miou"] == frame["leader_best"]].drop(columns="leader_best")
    ordered = frame.sort_values(["best_miou", "trial_id"], ascending=[False, True])
    return ordered.drop_duplicates("arch_id").reset_index(drop=True)


class NoSuchTrialError(StoreError):
    """No trial has that id."""


def search_details(store: Store, search: str | None = None) -> dict[str, Any]:
    """What a search is: name, dataset, status, times, its config and the dataset's class names.

    ``class_names`` is None unless the search recorded them in its config.
    """
    sid = search_id(store, search)
    with store.session_scope() as session:
        row = session.execute(select(Search).where(Search.id == sid)).scalar_one()
        config = json.loads(row.config_json or "{}")
        names = config.get("class_names")
        return {
            "search_id": row.id,
            "name": row.name,
            "kind": row.kind,
            "space_name": row.space_name,
            "dataset": row.dataset,
            "status": row.status,
            "created_at": row.created_at,
            "finished_at": row.finished_at,
            "config": config,
            "class_names": tuple(str(n) for n in names) if isinstance(names, list) else None,
        }


def trial_search(store: Store, trial_id: int) -> str:
    """The name of the search a trial belongs to (links carry only the trial id)."""
    with store.session_scope() as session:
        name = session.execute(
            select(Search.name).join(Trial, Trial.search_id == Search.id).where(Trial.id == trial_id)
        ).scalar_one_or_none()
    if name is None:
        raise NoSuchTrialError(f"no trial with id {trial_id} in {store.masked_url}")
    return name


def trial_times_frame(store: Store, search: str | None = None) -> pd.DataFrame:
    """When each trial of a search started and finished (UTC), for best-so-far over wall time."""
    statement = (
        select(Trial.id.label("trial_id"), Trial.number, Trial.started_at, Trial.finished_at)
        .where(Trial.search_id == search_id(store, search))
        .order_by(Trial.number)
    )
    frame = _frame(store, statement)
    for column in ("started_at", "finished_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def per_class_iou_frame(
    store: Store, search: str | None = None, trial_ids: Sequence[int] | None = None
) -> pd.DataFrame:
    """Long frame (trial_id, number, arch_id, class_index, iou) of each trial's best-epoch
    per-class val IoU; a cached trial shows the epoch of the trial it reused."""
    source = func.coalesce(Trial.cached_from, Trial.id)
    statement = select(
        Trial.id.label("trial_id"), Trial.number, Trial.arch_id, Epoch.per_class_iou_json
    ).join(Epoch, (Epoch.trial_id == source) & (Epoch.epoch == Trial.best_epoch))
    if trial_ids is not None:
        statement = statement.where(Trial.id.in_(list(trial_ids)))
    else:
        statement = statement.where(Trial.search_id == search_id(store, search))
    rows = _frame(store, statement.order_by(Trial.number))
    records = [
        (row.trial_id, row.number, row.arch_id, index, np.nan if iou is None else float(iou))
        for row in rows.itertuples(index=False)
        if row.per_class_iou_json
        for index, iou in enumerate(json.loads(row.per_class_iou_json))
    ]
    frame = pd.DataFrame.from_records(
        records, columns=["trial_id", "number", "arch_id", "class_index", "iou"]
    )
    return frame.astype({"trial_id": int, "number": int, "class_index": int, "iou": float})


def counts(store: Store) -> dict[str, int]:
    with store.session_scope() as session:
        return {
            model.__tablename__: session.execute(select(func.count()).select_from(model)).scalar_one()
            for model in (Search, Architecture, Trial, Epoch)
        }


#: A cached trial may reuse a trial that was itself cached; chains longer than this are a loop.
_MAX_CACHE_HOPS = 64


def trial_record(store: Store, trial_id: int) -> dict[str, Any]:
    """One trial as an export needs it: its search, status, its own cost (with the device and
    input it was measured on) and the trial whose training produced its result.

    A ``cached`` trial trained nothing: ``source_trial_id`` follows ``cached_from`` to the
    trial that did, and ``checkpoint``, ``best_epoch`` and ``source_search`` are that
    trial's. For every other trial the source is the trial itself.
    """
    with store.session_scope() as session:
        trial = session.get(Trial, trial_id)
        if trial is None:
            raise NoSuchTrialError(f"no trial with id {trial_id} in {store.masked_url}")
        source, seen = trial, {trial.id}
        while source.cached_from is not None:
            following = session.get(Trial, source.cached_from)
            if following is None or following.id in seen or len(seen) > _MAX_CACHE_HOPS:
                break
            seen.add(following.id)
            source = following
        cost = trial.cost
        return {
            "trial_id": trial.id,
            "search": trial.search.name,
            "number": trial.number,
            "status": trial.status,
            "arch_id": trial.arch_id,
            "dataset": trial.dataset,
            "genotype_json": trial.genotype_json,
            "best_miou": trial.best_miou,
            "cached_from": trial.cached_from,
            "source_trial_id": source.id,
            "source_search": source.search.name,
            "source_number": source.number,
            "source_status": source.status,
            "best_epoch": source.best_epoch,
            "checkpoint": source.checkpoint,
            "params": cost.params if cost else None,
            "flops": cost.flops if cost else None,
            "latency_ms": cost.latency_ms if cost else None,
            "peak_memory_mb": cost.peak_memory_mb if cost else None,
            "cost_device": cost.device if cost else None,
            "cost_input": cost.input if cost else None,
        }
