"""Reads for a live view of a big search: one page of ranked trials, sorted and filtered in SQL.

``leaderboard_frame`` reads every trial of a search; a live page of 100,000 trials cannot
(the browser shows a hundred rows at a time). ``trials_page`` answers one page with two
statements (the count, and the page's rows with their rank), ``search_watermark`` tells in one
cheap statement whether anything changed since the last look, ``trials_since`` reads only the
trials that did, and ``knob_values`` lists the values a filter can offer. Sorting and filtering
by a knob reads it out of the genotype JSON in SQL (SQLite's ``json_extract``, PostgreSQL's
``jsonb_extract_path_text``): no index serves those, so they scan the search's rows, which is
still one statement.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import astuple, dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, Integer, Select, String, and_, case, cast, func, or_, select, union
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import QueryableAttribute, aliased

from nasfcn.store._engine import Store, StoreError
from nasfcn.store._queries import LEADERBOARD_COLUMNS, _frame, _with_knobs, trial_columns
from nasfcn.store._schema import Epoch, Search, Trial, TrialCost

#: Conditions a filter may put on a column (AG Grid's names): numbers and texts alike.
COMPARISONS = (
    "equals",
    "notEqual",
    "lessThan",
    "lessThanOrEqual",
    "greaterThan",
    "greaterThanOrEqual",
    "inRange",
    "blank",
    "notBlank",
    "contains",
    "notContains",
    "startsWith",
    "endsWith",
)
#: The knobs a page can be filtered by value (as ``leaderboard_frame`` writes them).
KNOB_COLUMNS = ("stages", "width", "kernels", "skip", "upsample", "attention", "downsample")


#: A column of a page: a model's attribute or an expression over them.
SQLColumn = ColumnElement[Any] | QueryableAttribute[Any]


class PageQueryError(StoreError, ValueError):
    """A sort or filter names a column or condition a page cannot be ordered or filtered by."""


@dataclass(frozen=True)
class Condition:
    """One condition on a column: ``op`` of ``COMPARISONS``, ``value`` (and ``upper`` for inRange)."""

    column: str
    op: str
    value: Any = None
    upper: Any = None


@dataclass(frozen=True)
class ColumnFilter:
    """Conditions on one column, joined by ``join`` (``and`` | ``or``), as a grid's header filter sends."""

    conditions: tuple[Condition, ...]
    join: str = "and"


@dataclass(frozen=True)
class PageQuery:
    """Which rows of a search's ranked trials, in which order.

    ``sort``: (column, "asc" | "desc") pairs, the rank order breaks ties; ``statuses`` and
    ``knobs`` (knob -> values, compared as text) restrict like ``leaderboard.data.filter_trials``.
    """

    offset: int = 0
    limit: int = 100
    sort: tuple[tuple[str, str], ...] = ()
    statuses: tuple[str, ...] = ()
    knobs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    filters: tuple[ColumnFilter, ...] = ()
    # Trial numbers whose runs come first, in this order, with the runs re-seeding them
    # (``confirms``): a search's confirmed networks by pooled mean (``nasfcn.confirm``).
    first: tuple[int, ...] = ()


@dataclass(frozen=True)
class TrialPage:
    """One page: ``rows`` (``LEADERBOARD_COLUMNS``, in order) and how many rows match in all."""

    rows: pd.DataFrame
    total: int


def _rank(search: int, from_below: bool = False) -> ColumnElement[Any]:
    """A trial's rank by val mIoU (ties share the best rank; None without a result): one more than
    the trials that did better, counted on ``ix_trials_search_best`` for the page's rows only (a
    window over the whole search would be joined to every row: SQLite scans it once per row).

    A count costs as many index entries as it counts: for pages of the worst trials
    (``from_below``) the rank is the scored trials (counted once) less those not better."""
    other = aliased(Trial)
    if not from_below:
        above = select(func.count()).where(other.search_id == search, other.best_miou > Trial.best_miou)
        return case((Trial.best_miou.is_(None), None), else_=above.scalar_subquery() + 1)
    scored = select(func.count()).where(other.search_id == search, other.best_miou.is_not(None))
    below = aliased(Trial)
    not_better = select(func.count()).where(below.search_id == search, below.best_miou <= Trial.best_miou)
    rank = scored.scalar_subquery() - not_better.scalar_subquery() + 1
    return case((Trial.best_miou.is_(None), None), else_=rank)


def _knob(dialect: str, *path: str) -> ColumnElement[Any]:
    """One genotype field as SQL text (numbers too), read out of the stored JSON."""
    if dialect == "postgresql":
        return func.jsonb_extract_path_text(cast(Trial.genotype_json, JSONB), *path)
    return cast(func.json_extract(Trial.genotype_json, "$." + ".".join(path)), String)


def _columns(dialect: str, rank: ColumnElement[Any]) -> dict[str, SQLColumn]:
    """The columns a page can be sorted and filtered by: leaderboard column -> SQL expression."""
    kernels = func.replace(_knob(dialect, "encoder", "kernel_size"), " ", "")
    kernels = func.replace(func.replace(func.replace(kernels, "[", ""), "]", ""), ",", "/")
    kind = _knob(dialect, "attention", "type")
    attention = case((kind == "none", kind), else_=kind + "@" + _knob(dialect, "attention", "where"))
    return {
        "rank": rank,
        "trial_id": Trial.id,
        "number": Trial.number,
        "arch_id": Trial.arch_id,
        "status": Trial.status,
        "best_miou": Trial.best_miou,
        "best_pixel_accuracy": Trial.best_pixel_accuracy,
        "final_miou": Trial.final_miou,
        "params": TrialCost.params,
        "flops": TrialCost.flops,
        "latency_ms": TrialCost.latency_ms,
        "peak_memory_mb": TrialCost.peak_memory_mb,
        "epochs_trained": Trial.epochs_trained,
        "reference": Trial.reference,
        "error": Trial.error,
        "stages": cast(_knob(dialect, "encoder", "stages"), Integer),
        "width": cast(_knob(dialect, "encoder", "width"), Integer),
        "kernels": kernels,
        "skip": _knob(dialect, "skip"),
        "upsample": _knob(dialect, "upsample"),
        "attention": attention,
        "downsample": _knob(dialect, "encoder", "downsample"),
    }


_COST_COLUMNS = ("params", "flops", "latency_ms", "peak_memory_mb")
#: Columns ``trials_page`` can sort and filter by.
PAGE_COLUMNS = tuple(_columns("sqlite", _rank(0)))


def _order(query: PageQuery, columns: Mapping[str, SQLColumn]) -> list[ColumnElement[Any]]:
    """ORDER BY: the requested columns (blanks last either way), then the rank order."""
    terms = []
    for key, direction in query.sort:
        if key not in columns or direction not in ("asc", "desc"):
            raise PageQueryError(
                f"cannot sort by {key!r} {direction!r}: columns {', '.join(columns)}; directions asc, desc"
            )
        if key == "rank" and query.first:  # confirmed networks first, by pooled mean
            place = _place(query.first)
            terms.append(place.asc() if direction == "asc" else place.desc())
        if key == "rank":  # rank 1 is the best val mIoU
            key, direction = "best_miou", "desc" if direction == "asc" else "asc"
        expression = columns[key]
        terms.append((expression.asc() if direction == "asc" else expression.desc()).nulls_last())
    return [
        *terms,
        *([_place(query.first).asc()] if query.first else []),
        Trial.best_miou.desc().nulls_last(),
        TrialCost.latency_ms.asc().nulls_last(),
        Trial.number.asc(),
    ]


def _place(first: Sequence[int]) -> ColumnElement[Any]:
    """A trial's place among ``first`` (its own number or the one it ``confirms``); the rest after."""
    group = func.coalesce(Trial.confirms, Trial.number)
    return case({int(number): place for place, number in enumerate(first)}, value=group, else_=len(first))


def confirmed_runs_frame(store: Store, search: int) -> pd.DataFrame:
    """The confirmation runs of search ``search`` (id) and the trials they re-seed: number, confirms,
    status, best_miou, seed, latency_ms and test_miou. One statement, a few rows per network."""
    confirmed = select(Trial.confirms).where(Trial.search_id == search, Trial.confirms.is_not(None))
    statement = (
        select(
            Trial.number,
            Trial.confirms,
            Trial.status,
            Trial.best_miou,
            Trial.seed,
            Trial.test_miou,
            TrialCost.latency_ms,
        )
        .outerjoin(TrialCost, TrialCost.trial_id == Trial.id)
        .where(Trial.search_id == search, or_(Trial.confirms.is_not(None), Trial.number.in_(confirmed)))
    )
    return _frame(store, statement)


def _condition(expression: SQLColumn, condition: Condition) -> ColumnElement[bool]:
    op, value = condition.op, condition.value
    if op == "blank":
        return expression.is_(None)
    if op == "notBlank":
        return expression.is_not(None)
    if op in ("contains", "notContains", "startsWith", "endsWith"):  # case-insensitive, as the grid's
        text = func.lower(cast(expression, String))
        needle = str(value or "").lower()
        match = {
            "contains": text.contains(needle, autoescape=True),
            "notContains": ~text.contains(needle, autoescape=True),
            "startsWith": text.startswith(needle, autoescape=True),
            "endsWith": text.endswith(needle, autoescape=True),
        }[op]
        return or_(match, expression.is_(None)) if op == "notContains" else match
    comparisons: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
        "equals": lambda e, v: e == v,
        "notEqual": lambda e, v: or_(e != v, e.is_(None)),
        "lessThan": lambda e, v: e < v,
        "lessThanOrEqual": lambda e, v: e <= v,
        "greaterThan": lambda e, v: e > v,
        "greaterThanOrEqual": lambda e, v: e >= v,
        "inRange": lambda e, v: and_(e >= v, e <= condition.upper),
    }
    if op not in comparisons:
        raise PageQueryError(
            f"unknown filter condition {op!r} on {condition.column!r}; valid: {', '.join(COMPARISONS)}"
        )
    return comparisons[op](expression, value)


def _where(query: PageQuery, columns: Mapping[str, SQLColumn]) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if query.statuses:
        clauses.append(Trial.status.in_(list(query.statuses)))
    for knob, values in query.knobs.items():
        if values:
            if knob not in KNOB_COLUMNS:
                raise PageQueryError(f"cannot filter by knob {knob!r}; knobs: {', '.join(KNOB_COLUMNS)}")
            clauses.append(columns[knob].in_([str(v) for v in values]))
    for column_filter in query.filters:
        parts = []
        for condition in column_filter.conditions:
            if condition.column not in columns:
                raise PageQueryError(f"cannot filter by {condition.column!r}; columns: {', '.join(columns)}")
            parts.append(_condition(columns[condition.column], condition))
        if parts:
            clauses.append(or_(*parts) if column_filter.join == "or" else and_(*parts))
    return clauses


def _page_statements(store: Store, search: int, query: PageQuery) -> tuple[Select[Any], Select[Any]]:
    """(count, page) for ``query``: both filter alike; the page joins the rank and the cost."""
    worst_first = bool(query.sort) and query.sort[0] in (("best_miou", "asc"), ("rank", "desc"))
    rank = _rank(search, from_below=worst_first)
    columns = _columns(store.engine.dialect.name, rank)
    where = [Trial.search_id == search, *_where(query, columns)]
    order = _order(query, columns)
    # The page's ids first, then its rows: SQLite would otherwise compute every selected
    # column (the rank's count among them) for each row it sorts or skips.
    ids = select(Trial.id).outerjoin(TrialCost, TrialCost.trial_id == Trial.id).where(*where)
    ids = ids.order_by(*order).offset(max(0, int(query.offset))).limit(max(0, int(query.limit)))
    chosen = ids.subquery("page")
    page = (
        select(*trial_columns(), rank.label("rank"))
        .join(chosen, chosen.c.id == Trial.id)
        .outerjoin(TrialCost, TrialCost.trial_id == Trial.id)
        .order_by(*order)
    )
    counted = select(func.count()).select_from(Trial)
    if any(c.column in _COST_COLUMNS for f in query.filters for c in f.conditions):
        counted = counted.outerjoin(TrialCost, TrialCost.trial_id == Trial.id)
    return counted.where(*where), page


def trials_page(store: Store, search: int, query: PageQuery) -> TrialPage:
    """One page of search ``search``'s trials (id), ranked and filtered in SQL: two statements."""
    counted, page = _page_statements(store, search, query)
    with store.engine.connect() as connection:
        total = int(connection.execute(counted).scalar_one())
        rows = pd.read_sql(page, connection)
    rows = _with_knobs(rows)
    return TrialPage(rows=rows.loc[:, list(LEADERBOARD_COLUMNS)], total=total)


@dataclass(frozen=True)
class Watermark:
    """Where a search's trials stood at one look: their count, the newest trial id, the latest
    start and finish, the newest epoch row (of any search) and the number of cost rows.

    Every write a board shows moves one of them (``upsert_trial``, ``record_epoch``,
    ``finish_trial``, ``record_cost``); ``trials_since`` reads the trials behind a move."""

    trials: int
    last_id: int | None
    started: Any
    finished: Any
    last_epoch: int | None
    costs: int

    def key(self) -> tuple[Any, ...]:
        """The watermark as JSON-able values (times as text), as the live app's store holds it."""
        return tuple(v if v is None or isinstance(v, int) else str(v) for v in astuple(self))


def search_watermark(store: Store, search: int) -> Watermark:
    """Search ``search``'s (id) ``Watermark``: one statement, read through indexes (no row of the
    search is visited); a refresh re-reads only when it moved, and then only what moved."""
    with store.engine.connect() as connection:
        row = connection.execute(_watermark_statement(search)).one()
    return Watermark(int(row[0]), row[1], row[2], row[3], row[4], int(row[5]))


def board_watermark(store: Store, search: int) -> tuple[Any, ...]:
    """``search_watermark`` as JSON-able values (times as text)."""
    return search_watermark(store, search).key()


def _watermark_statement(search: int) -> Select[Any]:
    of_search = Trial.search_id == search
    return select(
        select(func.count()).select_from(Trial).where(of_search).scalar_subquery(),
        select(func.max(Trial.id)).where(of_search).scalar_subquery(),
        select(func.max(Trial.started_at)).where(of_search).scalar_subquery(),
        select(func.max(Trial.finished_at)).where(of_search).scalar_subquery(),
        select(func.max(Epoch.id)).scalar_subquery(),
        select(func.count()).select_from(TrialCost).scalar_subquery(),
    )


def trials_since(
    store: Store, search: int, mark: Watermark | None = None, also: Sequence[int] = ()
) -> pd.DataFrame:
    """The rows (``trial_columns`` with the knobs parsed, unranked) of search ``search``'s trials
    that may have changed since ``mark``: new ones, those started or finished at or after its
    times, those with an epoch after its newest, and ``also`` (the trials a board still shows
    as unfinished: their cost row may have landed since). ``mark`` None: every trial. One
    statement; each part of the union is read through an index, so a refresh reads the trials
    that moved, never the whole search again."""
    statement = select(*trial_columns()).outerjoin(TrialCost, TrialCost.trial_id == Trial.id)
    statement = statement.where(Trial.search_id == search)
    if mark is not None:
        of_search = Trial.search_id == search
        moved = [select(Trial.id).where(Trial.id.in_([int(t) for t in also]))] if len(also) else []
        if mark.last_id is not None:
            moved.append(select(Trial.id).where(of_search, Trial.id > mark.last_id))
        if mark.started is not None:
            moved.append(select(Trial.id).where(of_search, Trial.started_at >= mark.started))
        if mark.finished is not None:
            moved.append(select(Trial.id).where(of_search, Trial.finished_at >= mark.finished))
        if mark.last_epoch is not None:
            moved.append(select(Epoch.trial_id).where(Epoch.id > mark.last_epoch))
        if not moved:  # nothing marked: the search had no trial, every one is new
            moved.append(select(Trial.id).where(of_search))
        statement = statement.where(Trial.id.in_(union(*moved).subquery().select()))
    frame = _frame(store, statement.order_by(Trial.id))
    return _with_knobs(frame)


def search_list(store: Store) -> pd.DataFrame:
    """Every search's name and kind, the latest first (as ``searches_frame`` orders them) without
    its counts: what a menu needs on every refresh, without a pass over all trials."""
    statement = select(Search.name, Search.kind).order_by(Search.created_at.desc(), Search.id.desc())
    return _frame(store, statement)


def knob_values(store: Store, search: int, knobs: Sequence[str]) -> dict[str, list[str]]:
    """The distinct values each of ``knobs`` takes in the search, as text, sorted: one statement."""
    unknown = [k for k in knobs if k not in KNOB_COLUMNS]
    if unknown:
        raise PageQueryError(f"cannot list knob values of {unknown}; knobs: {', '.join(KNOB_COLUMNS)}")
    columns = _columns(store.engine.dialect.name, _rank(search))
    values = [cast(columns[k], String).label(k) for k in knobs]
    statement = select(*values).where(Trial.search_id == search).distinct()
    frame = _frame(store, statement)
    return {k: sorted({str(v) for v in frame[k].dropna()}) for k in knobs}
