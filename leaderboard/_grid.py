"""The live table's rows, paged in the database.

The grid uses AG Grid's infinite row model: it asks for rows ``startRow``..``endRow`` with
its sort and filter models (``getRowsRequest``) and shows what the answer holds, so the
browser never holds more than the blocks in view. ``page_query`` turns a request (plus the
filters above the table) into the store's ``PageQuery``; ``page_rows`` answers it with
``trials_page`` (one count, one page) and the seed spread of the page's networks, never the
whole search.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import pandas as pd
from dash_ag_grid import AgGrid

from leaderboard._proxies import board_scores, with_proxies
from leaderboard.data import with_seed_spread
from leaderboard.table import COLUMNS, OPTIONAL_COLUMNS, STATUS_STYLE, Column, records, table_frame
from nasfcn.confirm import POOLED_COLUMNS, pooled
from nasfcn.store import (
    ColumnFilter,
    Condition,
    PageQuery,
    Store,
    confirmed_runs_frame,
    seed_spread_frame,
    spread_recipe,
    trials_page,
)

#: The table's column key -> the store's page column: only these sort and filter (in SQL).
SQL_COLUMNS = {
    "rank": "rank",
    "trial": "number",
    "arch_id": "arch_id",
    "status": "status",
    "best_miou": "best_miou",
    "pixel_accuracy": "best_pixel_accuracy",
    "params": "params",
    "flops": "flops",
    "latency_ms": "latency_ms",
    "epochs": "epochs_trained",
    "skip": "skip",
    "upsample": "upsample",
    "attention": "attention",
    "kernels": "kernels",
    "depth": "stages",
    "width": "width",
}
#: Sorted but not filtered: a filter on the rank would count the trials above every row.
SORT_ONLY = ("rank",)
#: Rows per block the grid asks for, and blocks it keeps.
BLOCK_ROWS, CACHED_BLOCKS = 100, 20


_MARKED_STATUSES = ("failed", "rejected_by_constraint")
#: d3-format of each numeric column kind, as the grid shows it (sorting uses the numbers).
_GRID_FORMATS = {"ratio": ".3f", "ms": ".2f", "count": ".3s", "score": ".4~g"}
_NUMERIC_KINDS = ("int", "ratio", "ms", "count")
_MARKED_ROW = {"backgroundColor": "#fbeeee"}  # a failed or rejected trial's row


def _is_status(statuses: tuple[str, ...]) -> str:
    """A grid condition on the row's raw status: our own ``STATUS_STYLE`` keys, never stored text."""
    return " || ".join(f"params.data.status_key === {json.dumps(s)}" for s in statuses)


def _column_def(column: Column) -> dict[str, Any]:
    """One grid column: numbers sort and filter as numbers; the default cell renderer writes
    text only (no HTML), so stored strings are shown as typed."""
    spec: dict[str, Any] = {"field": column.key, "headerName": column.title}
    if column.kind in _NUMERIC_KINDS:
        spec["filter"] = "agNumberColumnFilter"
    if column.key not in SQL_COLUMNS:  # the database sorts and filters the rows: only what it can
        spec.update(sortable=False, filter=False)
    if column.kind == "score":  # a proxy's column: say why it does not sort
        spec["headerTooltip"] = (
            f"zero-cost proxy {column.title} at initialisation; not sortable here (the live table sorts "
            "in the database; the static file, nasfcn leaderboard, sorts by it)"
        )
    elif column.key in SORT_ONLY:
        spec["filter"] = False
    if column.kind in _GRID_FORMATS:
        fmt = json.dumps(_GRID_FORMATS[column.kind])
        spec["valueFormatter"] = {"function": f"params.value == null ? '' : d3.format({fmt})(params.value)"}
    if column.key == "status":
        spec["cellStyle"] = {
            "styleConditions": [
                {"condition": _is_status((status,)), "style": {"color": color, "fontWeight": 600}}
                for status, (_, color) in STATUS_STYLE.items()
            ]
        }
    reference = "params.data.reference != null"  # table.py's reference design's row
    if column.key == "rank":
        spec["cellStyle"] = {
            "styleConditions": [{"condition": reference, "style": {"borderLeft": "4px solid #444"}}]
        }
    if column.key == "note":
        spec["cellStyle"] = {"styleConditions": [{"condition": reference, "style": {"fontWeight": 600}}]}
        spec["tooltipField"] = "note"  # errors are long; the tooltip shows them whole, as text
    return spec


def column_defs(columns: tuple[Column, ...]) -> list[dict[str, Any]]:
    """The grid's column definitions for ``columns``."""
    return [_column_def(c) for c in columns]


def data_table() -> AgGrid:
    """The trials table: AG Grid's infinite row model asks the server for the blocks of rows in
    view (``leaderboard._grid``), sorted and filtered in the database, so a search of 10^5
    trials sends a few hundred rows; a filter under every header the database can apply."""
    return AgGrid(
        id="table",
        columnDefs=column_defs(tuple(c for c in COLUMNS if c.key not in OPTIONAL_COLUMNS)),
        rowModelType="infinite",
        getRowId="params.data.id",
        defaultColDef={
            "sortable": True,
            "filter": True,
            "floatingFilter": True,
            "resizable": True,
            "maxWidth": 450,
        },
        getRowStyle={"styleConditions": [{"condition": _is_status(_MARKED_STATUSES), "style": _MARKED_ROW}]},
        dashGridOptions={
            "ensureDomOrder": True,  # rows in the page in table order, for screen readers
            "suppressColumnVirtualisation": True,  # ~20 columns: all drawn; rows are what grows
            "rowStyle": {"cursor": "pointer"},
            "tooltipShowDelay": 300,
            "animateRows": False,
            "cacheBlockSize": BLOCK_ROWS,
            "maxBlocksInCache": CACHED_BLOCKS,
            "maxConcurrentDatasourceRequests": 1,  # one answer per request: Dash keeps the latest
            "infiniteInitialRowCount": 1,
        },
        style={"height": "36rem", "fontFamily": "system-ui, sans-serif", "fontSize": "13px"},
    )


def page_query(
    request: Mapping[str, Any],
    statuses: Sequence[str] | None = None,
    knobs: Mapping[str, Sequence[str] | None] | None = None,
) -> PageQuery:
    """The store's query for one grid request (its ``sortModel`` and ``filterModel``) and the
    status and knob filters above the table."""
    start = max(0, int(request.get("startRow") or 0))
    end = max(start, int(request.get("endRow") or start + BLOCK_ROWS))
    sort = tuple(
        (SQL_COLUMNS[s["colId"]], str(s.get("sort")))
        for s in request.get("sortModel") or ()
        if s.get("colId") in SQL_COLUMNS and s.get("sort") in ("asc", "desc")
    )
    filters = tuple(
        _column_filter(SQL_COLUMNS[key], model)
        for key, model in (request.get("filterModel") or {}).items()
        if key in SQL_COLUMNS and key not in SORT_ONLY
    )
    return PageQuery(
        offset=start,
        limit=end - start,
        sort=sort,
        statuses=tuple(statuses or ()),
        knobs={k: tuple(str(v) for v in values) for k, values in (knobs or {}).items() if values},
        filters=filters,
    )


def _column_filter(column: str, model: Mapping[str, Any]) -> ColumnFilter:
    """One header filter: a single condition, or two joined by ``operator`` (AND / OR)."""
    parts = model.get("conditions") or [model]
    join = "or" if str(model.get("operator", "AND")).upper() == "OR" else "and"
    return ColumnFilter(tuple(_condition(column, part) for part in parts), join)


def _condition(column: str, part: Mapping[str, Any]) -> Condition:
    value, upper = part.get("filter"), part.get("filterTo")
    if column == "status" and isinstance(value, str):  # the cells show "stopped early"
        value = value.strip().replace(" ", "_")
    return Condition(column, str(part.get("type", "contains")), value, upper)


class ConfirmedCache:
    """A search's confirmation runs and what they pool to (``pooled``), read again only when the
    watched search changed (``key``), not for every block the grid asks for; threads of the
    server share it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[Any, ...] | None = None
        self._value: tuple[pd.DataFrame, pd.DataFrame] | None = None

    def get(self, store: Store, search: int, key: tuple[Any, ...]) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(the confirmation runs, their pooled statistics) of search ``search`` (id)."""
        with self._lock:
            if self._key != (search, *key) or self._value is None:
                self._value = confirmed_pooled(store, search)
                self._key = (search, *key)
            return self._value


def confirmed_pooled(store: Store, search: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Search ``search``'s (id) confirmation runs (and the trials they re-seed) and ``pooled``'s figures."""
    runs = confirmed_runs_frame(store, search)
    return runs, pooled(runs)


def page_rows(
    store: Store,
    details: Mapping[str, Any],
    query: PageQuery,
    confirmed: tuple[pd.DataFrame, pd.DataFrame] | None = None,
) -> dict[str, Any]:
    """The grid's answer: the page's rows as the table shows them, and how many match.

    What a row adds from elsewhere is read for the page's networks only (their runs with other
    seeds, their proxy scores): the first rows of a search of 10^5 trials read no other trial.
    ``confirmed``: ``ConfirmedCache.get``'s answer (None: read it now)."""
    runs, stats = confirmed or confirmed_pooled(store, details["search_id"])
    if not stats.empty:
        query = replace(query, first=tuple(int(n) for n in stats["group"]))
    page = trials_page(store, details["search_id"], query)
    trials = page.rows
    if not trials.empty:  # one query each for the page's networks, never one per row
        arch_ids = trials["arch_id"].tolist()
        spread = seed_spread_frame(store, details["dataset"], repeated_only=True, arch_ids=arch_ids)
        trials = with_seed_spread(trials, spread, spread_recipe(store, details["name"]))
        if not stats.empty:
            trials = pooled_page(trials, runs, stats)
        trials = with_proxies(trials, board_scores(store, details, arch_ids))
    return {"rowData": records(table_frame(trials)), "rowCount": page.total}


def pooled_page(trials: pd.DataFrame, confirmed: pd.DataFrame, stats: pd.DataFrame) -> pd.DataFrame:
    """A page's rows with their network's pooled figures and the rank ``with_pooled`` gives them:
    a confirmed network's place, else the confirmed networks, plus one, plus the unconfirmed
    trials above it (the SQL rank counted every trial above it, confirmation runs too)."""
    group = trials["confirms"].fillna(trials["number"]).astype(int)
    indexed = stats.set_index("group")
    added = {column: group.map(indexed[column]).astype(float) for column in POOLED_COLUMNS}
    place = group.map({int(n): i for i, n in enumerate(stats["group"], start=1)})
    members = confirmed["confirms"].fillna(confirmed["number"]).astype(int).isin(set(stats["group"]))
    member_scores = confirmed.loc[members, "best_miou"].dropna().to_numpy()
    above = trials["best_miou"].map(lambda v: int((member_scores > v).sum()) if v == v else 0)
    rank = (len(stats) + trials["rank"] - above).where(trials["rank"].notna())
    return trials.assign(**added, rank=place.astype(float).fillna(rank))
