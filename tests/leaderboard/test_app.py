"""The live app's trials table, read from the layout the server sends (no browser)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from plotly.utils import PlotlyJSONEncoder

from leaderboard import app as live
from leaderboard import figures
from leaderboard.data import load_live_view, load_view
from leaderboard.static import _plots
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


def _points(figure: Any) -> int:
    """The marks a figure shows at once (a menu's hidden traces aside): points, parallel-coordinate lines."""
    total = 0
    for trace in figure.data:
        if trace.visible is False:
            continue
        if trace.type == "parcoords":
            total += len(trace.dimensions[0]["values"])
        elif getattr(trace, "x", None) is not None:
            total += len(trace.x)
    return total


#: Of 5,000 trials, what the overview figures may draw: the cap, and the front's few points; the
#: learning curves: the best 20 and a sample of 400 trials' 10 epochs, each curve ended by a gap.
BIG, MARKS, CURVE_MARKS = 5_000, figures.PLOT_POINTS + 200, (20 + 400) * 11


@pytest.mark.slow
def test_a_big_searchs_overview_figures_draw_a_bounded_number_of_marks(bulk_db) -> None:
    url, search = bulk_db(BIG)
    store = Store(url)
    try:
        loaded = load_live_view(store, search, lambda trials: live._drawn([], {}, None, trials))
        outputs = live._search_outputs(loaded, [], {}, None, None)
        board = load_view(store, search, curves_only=True)
        static = [f for _, _, group in _plots(board, board.curves()) for f in group]
    finally:
        store.dispose()
    drawn = outputs[-len(live._FIGURES) - len(live._COMPARE_FIGURES) - 1 :]
    for figure in (*drawn, *static):
        title = figure.layout.title.text or ""
        assert _points(figure) <= (CURVE_MARKS if title.startswith("Learning") else MARKS), title
    pareto, _, best, parcoords = drawn[:4]
    assert "a random sample of 2,000 of" in pareto.layout.title.text
    assert "the best 500 trials, and a random sample of 1,500 of the other" in parcoords.layout.title.text
    assert "the best of up to 3 consecutive trials of 5,000" in best.layout.title.text


def _types(node: Any) -> set[str]:
    """The component types anywhere in a serialised Dash layout."""
    if isinstance(node, list):
        return set().union(*(_types(n) for n in node))
    if not isinstance(node, dict) or "type" not in node:
        return set()
    return {node["type"]} | _types(node.get("props", {}).get("children"))


def test_the_first_page_holds_the_table_and_no_plot_the_plots_come_with_the_first_rows(
    handmade_db: str,
) -> None:
    """Plotly (4.8 MB) takes a browser about a second to load and start: the page the server sends
    first has the table and no plot, and the plots come once the table has its rows."""
    store = Store(handmade_db)
    try:
        app = live.create_app(store)
        layout = app.server.test_client().get("/_dash-layout").get_json()
    finally:
        store.dispose()
    assert _component(layout, "table") is not None
    assert "Graph" not in _types(layout)
    assert _component(layout, "board-figures")["props"]["children"] == []
    section = json.loads(json.dumps(live.figure_section(), cls=PlotlyJSONEncoder))
    graphs = ("pareto", "curves", "best", "parcoords", "effects", "heatmap", "across", "diff")
    assert all(_component(section, g)["type"] == "Graph" for g in graphs)
    assert _component(section, "cost") is not None
    assert _component(section, "compare") is not None
