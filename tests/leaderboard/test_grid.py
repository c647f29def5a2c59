"""The live table's requests: AG Grid's sort and filter models become the store's page query."""

from __future__ import annotations

from sqlalchemy import event

from leaderboard._grid import SQL_COLUMNS, column_defs, page_query, page_rows
from leaderboard.data import load_board
from leaderboard.table import COLUMNS, records, table_frame
from nasfcn.store import ColumnFilter, Condition, Store, leaderboard_frame, open_store, search_details


def test_a_grid_request_becomes_a_page_query_in_the_stores_column_names() -> None:
    request = {
        "startRow": 200,
        "endRow": 300,
        "sortModel": [{"colId": "depth", "sort": "desc"}, {"colId": "note", "sort": "asc"}],
        "filterModel": {
            "best_miou": {"filterType": "number", "type": "inRange", "filter": 0.2, "filterTo": 0.4},
            "status": {
                "filterType": "text",
                "operator": "OR",
                "conditions": [
                    {"filterType": "text", "type": "contains", "filter": "stopped early"},
                    {"filterType": "text", "type": "equals", "filter": "failed"},
                ],
            },
            "rank": {"filterType": "number", "type": "equals", "filter": 1},
        },
    }
    query = page_query(request, ["completed"], {"skip": ["fcn8s"], "upsample": None})
    assert (query.offset, query.limit) == (200, 100)
    assert query.sort == (("stages", "desc"),)  # the note has no column in the database to sort by
    assert query.statuses == ("completed",)
    assert dict(query.knobs) == {"skip": ("fcn8s",)}
    assert query.filters == (
        ColumnFilter((Condition("best_miou", "inRange", 0.2, 0.4),)),
        ColumnFilter(
            (Condition("status", "contains", "stopped_early"), Condition("status", "equals", "failed")), "or"
        ),
    )  # the rank is sorted, never filtered


def test_only_columns_the_database_orders_are_sortable_and_filterable() -> None:
    specs = {spec["field"]: spec for spec in column_defs(COLUMNS)}
    for key, spec in specs.items():
        if key in SQL_COLUMNS:
            assert spec.get("sortable", True), key
        else:
            assert spec["sortable"] is False, key
            assert spec["filter"] is False, key
    assert specs["rank"]["filter"] is False


def test_page_rows_answer_with_the_page_and_the_count(handmade_db: str) -> None:
    store = Store(handmade_db)
    try:
        details = search_details(store, "alpha")
        board = leaderboard_frame(store, "alpha")
        answer = page_rows(store, details, page_query({"startRow": 1, "endRow": 3}))
    finally:
        store.dispose()
    assert answer["rowCount"] == len(board)
    assert [row["id"] for row in answer["rowData"]] == [int(t) for t in board["trial_id"][1:3]]
    assert {"rank", "status", "status_key", "note", "seeds"} <= set(answer["rowData"][0])


def test_page_rows_rank_confirmed_networks_by_pooled_mean_in_the_database(confirmed_search, db_url) -> None:
    store = confirmed_search(open_store(db_url))
    details = search_details(store, "conf")
    first = page_rows(store, details, page_query({"startRow": 0, "endRow": 4}))
    rest = page_rows(store, details, page_query({"startRow": 4, "endRow": 10}))
    rows = first["rowData"] + rest["rowData"]
    assert [row["trial"] for row in rows] == [7, 1, 6, 9, 2, 8, 0, 5, 4, 3]
    assert [row["rank"] for row in rows] == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4]
    assert rows[0]["confirmed"] == "0.750 ± 0.010 [0.725, 0.775] (3), tie group 1"
    assert rows[-1]["confirmed"] is None
    assert first["rowCount"] == 10
    store.dispose()


def test_a_pages_seed_spread_reads_the_runs_of_its_own_networks_only(confirmed_search, db_url) -> None:
    """The first rows of a search of 10^5 trials must not read every trial of the dataset: the
    spread over seeds is looked up for the page's networks (by arch id), and equals the board's."""
    store = confirmed_search(open_store(db_url))
    details = search_details(store, "conf")
    statements: list[tuple[str, object]] = []

    def record(_conn, _cursor, statement: str, parameters: object, *_rest: object) -> None:
        statements.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        rows = page_rows(store, details, page_query({"startRow": 0, "endRow": 4}))["rowData"]
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    board = {row["id"]: row for row in records(table_frame(load_board(store, "conf").trials))}
    store.dispose()
    on_page = {row["arch_id"] for row in rows}
    others = {row["arch_id"] for row in board.values()} - on_page
    assert on_page  # the page holds some of the search's networks, not all
    assert others
    reads = [_values(bound) for text, bound in statements if "trial_key" in text and "HAVING" in text]
    assert reads, "no read of the runs across searches"
    for bound in reads:  # the page's networks, no other's
        assert on_page <= bound
        assert not others & bound
    assert [row["seeds"] for row in rows] == [board[row["id"]]["seeds"] for row in rows]
    assert any(row["seeds"] for row in rows)  # a confirmed network shows its spread


def _values(parameters: object) -> set[str]:
    """The text values bound to a statement (SQLite binds a tuple, PostgreSQL a dict)."""
    values = parameters.values() if isinstance(parameters, dict) else parameters
    return {v for v in values if isinstance(v, str)}  # type: ignore[union-attr]
