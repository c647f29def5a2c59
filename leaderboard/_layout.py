"""The live app's page: what the server sends first (``page_layout``: the table, no plot) and
the board's plots that join it once the table has its first rows (``figure_section``)."""

from __future__ import annotations

import plotly.graph_objects as go
from dash import ALL, dcc, html

from leaderboard import figures
from leaderboard._grid import data_table

#: Knobs offered as filters above the table.
FILTER_KNOBS = ("upsample", "skip", "attention")
#: The board's overview plots and the compare view's, as the refresh draws them, in order.
FIGURES = ("pareto", "curves", "best", "parcoords", "effects", "heatmap")
COMPARE_FIGURES = ("diff", "compare-curves", "compare-classes", "compare-cost")
#: A store inside the board's plots that a change of search or filter writes: the board is
#: redrawn through it, so it never is before its plots exist (they come after the first rows).
BOARD_KEY = {"part": "board-key", "n": ALL}
SHOWN, HIDDEN = {"display": "block"}, {"display": "none"}


def graph(graph_id: str) -> dcc.Graph:
    """An empty plot the board's refresh draws into."""
    return dcc.Graph(id=graph_id, figure=go.Figure(), config={"displaylogo": False})


def page_layout(refresh_s: float) -> html.Div:
    """The page the server sends first: the search menu, the filters, the table, and room for
    the board's plots (``figure_section``), the benchmark view and a trial's detail page."""
    table = data_table()
    filters = html.Div(
        [
            html.Label(["status ", dcc.Checklist(id="filter-status", options=[], value=[], inline=True)]),
            *(
                html.Label(
                    [f"{figures.KNOBS[knob]} ", dcc.Dropdown(id=f"filter-{knob}", options=[], multi=True)],
                    style={"minWidth": "14rem"},
                )
                for knob in FILTER_KNOBS
            ),
        ],
        style={"display": "flex", "gap": "1.5rem", "flexWrap": "wrap", "alignItems": "center"},
    )
    search_board = html.Div(
        id="search-board",
        children=[
            filters,
            html.H2("Trials, ranked by val mIoU"),
            html.P("Click a row for the trial's details.", className="muted"),
            table,
            html.Div(id="board-figures", children=[]),  # figure_section(), after the first rows
        ],
    )
    board = html.Div(
        id="board", children=[search_board, html.Div(id="benchmark-board", children=[], style=HIDDEN)]
    )
    return html.Div(
        [
            dcc.Location(id="url", refresh=False),
            dcc.Store(id="board-version"),  # the search and its watermark: what changed since
            dcc.Store(id="table-reset"),
            dcc.Store(id="figures-wanted"),  # the table has its first rows: draw the plots
            dcc.Interval(id="tick", interval=int(refresh_s * 1000), n_intervals=0),
            html.Header(
                [
                    html.H1("nasfcn leaderboard", style={"marginBottom": "0.3rem"}),
                    html.Div(
                        [
                            html.Label("search", htmlFor="search"),
                            dcc.Dropdown(
                                id="search", options=[], clearable=False, style={"minWidth": "24rem"}
                            ),
                            html.Span(id="summary", className="muted"),
                        ],
                        style={"display": "flex", "gap": "1rem", "alignItems": "center"},
                    ),
                ]
            ),
            html.Div(id="message", style={"margin": "1rem 0", "fontWeight": 600}),
            board,
            html.Div(id="detail", style=HIDDEN),
        ],
        style={"fontFamily": "system-ui, sans-serif", "maxWidth": "1300px", "margin": "1rem auto"},
    )


def figure_section() -> list:
    """The board's plots and the controls over them. The page gets them once the table has its
    first rows (``leaderboard.app``): loading and starting Plotly takes the browser about a
    second, which would otherwise come between the table and its first request."""
    return [
        dcc.Store(id={"part": "board-key", "n": 0}),
        html.H2("Pareto front"),
        dcc.RadioItems(
            id="cost",
            options=[{"label": title, "value": key} for key, (title, _) in figures.COSTS.items()],
            value="latency_ms",
            inline=True,
        ),
        graph("pareto"),
        html.H2("Learning curves"),
        graph("curves"),
        graph("best"),
        html.H2("Architecture knobs"),
        graph("parcoords"),
        graph("effects"),
        html.H2("Per-class IoU"),
        graph("heatmap"),
        html.H2("Compare candidates"),
        dcc.Dropdown(id="compare", options=[], value=[], multi=True, placeholder="choose 2 to 4 trials"),
        *(graph(graph_id) for graph_id in COMPARE_FIGURES),
        html.H2("Across searches"),
        graph("across"),
    ]
