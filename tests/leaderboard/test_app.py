"""The live app's trials table, read from the layout the server sends (no browser)."""

from __future__ import annotations

from typing import Any

from leaderboard import app as live
from nasfcn.store import Store


def _component(node: Any, component_id: str) -> dict[str, Any] | None:
    """The component with ``component_id`` anywhere in a serialised Dash layout."""
    if isinstance(node, list):
        return next((c for n in node if (c := _component(n, component_id)) is not None), None)
    if not isinstance(node, dict):
        return None
    props = node.get("props", {})
    if props.get("id") == component_id:
        return node
    return _component(props.get("children"), component_id)


def test_the_trials_table_is_a_virtualised_grid_that_writes_stored_text_as_text(handmade_db: str) -> None:
    store = Store(handmade_db)
    try:
        layout = live.create_app(store).server.test_client().get("/_dash-layout").get_json()
    finally:
        store.dispose()
    table = _component(layout, "table")
    assert table is not None
    assert (table["namespace"], table["type"]) == ("dash_ag_grid", "AgGrid")  # not the deprecated DataTable
    props = table["props"]
    # A fixed height and no auto-height layout: the grid draws only the rows on screen.
    assert props["style"]["height"]
    assert props.get("dashGridOptions", {}).get("domLayout") != "autoHeight"
    assert props["getRowId"] == "params.data.id"  # a click names the trial
    # The default renderer writes text; a custom renderer or raw code could write stored text as HTML.
    assert not props.get("dangerously_allow_code")
    assert all("cellRenderer" not in column for column in props["columnDefs"])
    assert {column["field"] for column in props["columnDefs"]} >= {"rank", "arch_id", "status", "note"}
