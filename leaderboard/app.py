"""The live leaderboard: a Dash app that re-reads the database every few seconds.

Routes: ``/`` (optionally ``/?search=NAME``) is the board of one search, or the benchmark
view when the search is a benchmark (``benchmark_page``); ``/trial/<id>`` is one trial's
detail page, which a click on its table row (or its point on the Pareto plot) opens. Dash
renders every string as text, and the figures escape stored text themselves (see
``leaderboard.figures``), so nothing stored in the database is ever run as markup.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any
from urllib.parse import parse_qs, quote

import pandas as pd
from dash import Dash, Input, Output, State, ctx, dcc, html, no_update

from leaderboard import figures
from leaderboard._compare import MENU_TOP, found_options, menu_options, merged
from leaderboard._grid import ConfirmedCache, column_defs, page_query, page_rows
from leaderboard._layout import BOARD_KEY as _BOARD_KEY
from leaderboard._layout import COMPARE_FIGURES as _COMPARE_FIGURES
from leaderboard._layout import FIGURES as _FIGURES
from leaderboard._layout import FILTER_KNOBS, figure_section, page_layout
from leaderboard._layout import HIDDEN as _HIDDEN
from leaderboard._layout import SHOWN as _SHOWN
from leaderboard._live import LiveBoards
from leaderboard._proxies import proxy_facts
from leaderboard.data import (
    BenchmarkBoard,
    Board,
    filter_trials,
    load_benchmark_board,
    load_trial_board,
)
from leaderboard.table import (
    BENCHMARK_METHOD,
    COLUMNS,
    OPTIONAL_COLUMNS,
    STATUS_STYLE,
    detail_items,
    format_cell,
    pretty_genotype,
    with_proxy_columns,
)
from nasfcn.store import Store, StoreError, board_watermark, search_details, search_list

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8050
DEFAULT_REFRESH_S = 5.0
#: How many candidates the compare view starts with, and allows.
COMPARE_DEFAULT, COMPARE_MAX = 3, 4
#: Rows of the per-class heat map (the best candidates).
HEATMAP_TOP = 10

_TRIAL_PATH = re.compile(r"^/trial/(\d+)/?$")
_DD = {"margin": 0, "overflowWrap": "anywhere"}
_CELL = {"padding": "0.1rem 1rem 0.1rem 0", "textAlign": "left"}


def _query_search(query: str | None) -> str | None:
    values = parse_qs((query or "").lstrip("?")).get("search")
    return values[0] if values else None


def create_app(store: Store | str | None = None, refresh_s: float = DEFAULT_REFRESH_S) -> Dash:
    """The Dash app on one database: a Store, or a URL (default ``$NASFCN_DB`` or ``sqlite:///nasfcn.db``)."""
    store = store if isinstance(store, Store) else Store(store)
    # The plots and their controls join the page after the first rows (``_add_figures``).
    app = Dash(
        __name__,
        title="nasfcn leaderboard",
        update_title=None,
        serve_locally=True,
        suppress_callback_exceptions=True,
    )
    app.layout = page_layout(refresh_s)
    _add_search_list(app, store)
    _add_watch(app, store)
    _add_rows(app, store)
    _add_figures(app)
    _add_refresh(app, store)
    _add_compare_search(app, store)
    _add_navigation(app, store)
    return app


def _add_search_list(app: Dash, store: Store) -> None:
    """The search menu: every search and benchmark; ``?search=NAME`` chooses one."""

    @app.callback(
        Output("search", "options"),
        Output("search", "value"),
        Input("tick", "n_intervals"),
        Input("url", "search"),
        State("search", "value"),
    )
    def list_searches(_tick: int, query: str | None, current: str | None) -> tuple[list, Any]:
        try:
            store.check(create=False)
            frame = search_list(store)  # names and kinds: no count over every trial each tick
        except StoreError:
            return [], None
        names = list(frame["name"])
        kinds = dict(zip(frame["name"], frame["kind"], strict=True))
        options = [
            {"label": f"{name} (benchmark)" if kinds[name] == "benchmark" else name, "value": name}
            for name in names
        ]
        wanted = _query_search(query)
        if wanted in names and (ctx.triggered_id == "url" or current is None):
            return options, wanted
        if current in names:
            return options, no_update
        return options, names[0] if names else None


def _add_watch(app: Dash, store: Store) -> None:
    """On every tick, one indexed read says whether the search changed (``board_watermark``);
    only then does the board read it again, and the table ask for its rows again."""

    @app.callback(
        Output("board-version", "data"),
        Input("search", "value"),
        Input("tick", "n_intervals"),
        State("board-version", "data"),
    )
    def watch(search: str | None, _tick: int, current: dict | None) -> Any:
        try:
            store.check(create=False)
            details = search_details(store, search)  # None: the latest, or no search at all
            if search is None:  # there is a search: the menu chooses one first
                return no_update
            mark = [search, details["status"], *board_watermark(store, details["search_id"])]
        except StoreError as err:
            mark = [search, "error", str(err)]
        if current and current.get("mark") == mark:
            return no_update
        return {"search": search, "mark": mark}

    app.clientside_callback(
        """function(version, statuses, ...knobs) {
            // The first version names the search the first rows were read for: nothing to redo.
            const trigger = dash_clientside.callback_context.triggered_id;
            const seen = window.__nasfcnBoardSearch;
            window.__nasfcnBoardSearch = version ? version.search : null;
            if (trigger === "board-version" && seen === undefined) { return dash_clientside.no_update; }
            window.dash_ag_grid.getApiAsync("table").then(api => {
                if (trigger === "board-version" && seen === window.__nasfcnBoardSearch) {
                    api.refreshInfiniteCache();  // the same search changed: keep the rows until new ones come
                } else {
                    api.purgeInfiniteCache();  // another search or filter: start from the top
                }
            });
            return dash_clientside.no_update;
        }""",
        Output("table-reset", "data"),
        Input("board-version", "data"),
        Input("filter-status", "value"),
        *(Input(f"filter-{knob}", "value") for knob in FILTER_KNOBS),
        prevent_initial_call=True,
    )


def _add_rows(app: Dash, store: Store) -> None:
    """The table's rows: the block the grid asks for, read from the database (``_grid``)."""
    confirmed = ConfirmedCache()

    @app.callback(
        Output("table", "getRowsResponse"),
        Input("table", "getRowsRequest"),
        State("board-version", "data"),
        State("url", "search"),
        State("filter-status", "value"),
        *(State(f"filter-{knob}", "value") for knob in FILTER_KNOBS),
    )
    def rows(request: dict | None, version: dict | None, url: str | None, *filters: Any) -> Any:
        """Every request gets an answer (the grid waits for it): before the first watch, for
        the search the address names (or the latest), so the first rows need no other call."""
        if not request:
            return no_update
        statuses, *knobs = filters
        query = page_query(request, statuses, dict(zip(FILTER_KNOBS, knobs, strict=True)))
        search = (version or {}).get("search") or _query_search(url)
        try:
            details = search_details(store, search)
            if details["kind"] == "benchmark":
                return {"rowData": [], "rowCount": 0}
            key = tuple(map(str, (version or {}).get("mark") or ()))
            return page_rows(store, details, query, confirmed.get(store, int(details["search_id"]), key))
        except StoreError:
            return {"rowData": [], "rowCount": 0}


def _add_figures(app: Dash) -> None:
    """The board's plots join the page when the table's first rows came (or at the first tick,
    if the table asked for none); from then on a change of search or filter writes the key
    the board is redrawn by (``_BOARD_KEY``: before the plots exist, there is none to write)."""

    app.clientside_callback(
        """function(rows, tick, wanted) {
            // Every answer of the grid comes here: only the first one (or a tick) asks the server.
            return wanted ? dash_clientside.no_update : true;
        }""",
        Output("figures-wanted", "data"),
        Input("table", "getRowsResponse"),
        Input("tick", "n_intervals"),
        State("figures-wanted", "data"),
        prevent_initial_call=True,
    )

    @app.callback(
        Output("board-figures", "children"),
        Input("figures-wanted", "data"),
        State(_BOARD_KEY, "id"),  # the plots' key store: there once the plots are
        prevent_initial_call=True,
    )
    def show(_wanted: bool, shown: list) -> Any:
        return no_update if shown else figure_section()

    app.clientside_callback(
        """function(version, ...filters) {
            return dash_clientside.callback_context.outputs_list.map(() => [version, filters]);
        }""",
        Output(_BOARD_KEY, "data"),
        Input("board-version", "data"),
        Input("filter-status", "value"),
        *(Input(f"filter-{knob}", "value") for knob in FILTER_KNOBS),
    )


def _add_refresh(app: Dash, store: Store) -> None:
    """The board, redrawn when the search changed (its watermark moved) and on every change of
    filter or comparison (through ``_BOARD_KEY``, once the plots exist: ``_add_figures``); the
    rows are the table's own (``_add_rows``)."""
    outputs = [
        Output("message", "children"),
        Output("summary", "children"),
        Output("search-board", "style"),
        Output("benchmark-board", "style"),
        Output("benchmark-board", "children"),
        Output("table", "columnDefs"),
        Output("filter-status", "options"),
        *(Output(f"filter-{knob}", "options") for knob in FILTER_KNOBS),
        Output("compare", "options"),
        Output("compare", "value"),
        *(Output(graph_id, "figure") for graph_id in (*_FIGURES, *_COMPARE_FIGURES, "across")),
    ]
    boards = LiveBoards()  # each search's board, read again only where its watermark moved

    @app.callback(
        *outputs,
        Input(_BOARD_KEY, "data"),
        Input("cost", "value"),
        Input("compare", "value"),
        State("board-version", "data"),
        State("filter-status", "value"),
        *(State(f"filter-{knob}", "value") for knob in FILTER_KNOBS),
    )
    def refresh(
        _key: list, cost: str | None, compare: list[int] | None, version: dict | None, *rest: Any
    ) -> tuple:
        statuses, *knob_values = rest
        knobs = dict(zip(FILTER_KNOBS, knob_values, strict=True))
        if not version:  # before the first watch: nothing to draw yet
            return (no_update,) * len(outputs)
        search = version.get("search")
        try:
            store.check(create=False)  # an empty or outdated database says so instead of failing
            loaded = _live_view(store, boards, search, partial(_drawn, statuses, knobs, compare))
        except StoreError as err:
            return _empty_outputs(str(err), len(FILTER_KNOBS))
        if isinstance(loaded, BenchmarkBoard):  # the search board's parts stay as they are, hidden
            summary = f"benchmark {loaded.status} · {loaded.summary()}"
            head = (loaded.message() or "", summary, _HIDDEN, _SHOWN, benchmark_page(loaded))
            return head + (no_update,) * (len(outputs) - len(head))
        return _search_outputs(loaded, statuses, knobs, cost, compare)


def _add_compare_search(app: Dash, store: Store) -> None:
    """Typing in the compare menu asks the database for the trials the text names (a number or
    the start of an arch id): the menu itself holds only the best few and the chosen ones."""

    @app.callback(
        Output("compare", "options", allow_duplicate=True),
        Input("compare", "search_value"),
        State("compare", "options"),
        State("board-version", "data"),
        prevent_initial_call=True,
    )
    def find(text: str | None, options: list | None, version: dict | None) -> Any:
        if not text or not version:
            return no_update
        try:
            details = search_details(store, version.get("search"))
            found = found_options(store, int(details["search_id"]), text)
        except StoreError:
            return no_update
        return merged((options or [])[: MENU_TOP + COMPARE_MAX], found)


def _live_view(
    store: Store, boards: LiveBoards, search: str | None, pick: Callable[[pd.DataFrame], Sequence[int]]
) -> Board | BenchmarkBoard:
    """What a refresh draws: a benchmark's statistics, or the search's board as ``boards`` holds it."""
    details = search_details(store, search)
    if details["kind"] == "benchmark":
        return load_benchmark_board(store, details["name"])
    return boards.board(store, details, pick)


def _drawn(
    statuses: list[str], knobs: dict[str, Any], compare: list[int] | None, trials: pd.DataFrame
) -> list:
    """The trials whose epochs and per-class IoU the board draws: the curves
    ``learning_curves_overview`` shows, the heat map's top ten and the compared ones."""
    shown = filter_trials(trials, statuses, knobs)
    ranked = [int(t) for t in shown.loc[shown["best_miou"].notna(), "trial_id"]]
    best, sample = figures.curve_sample(shown.loc[shown["epochs_trained"] > 0, "trial_id"].to_numpy(), ranked)
    return [*best, *sample.tolist(), *ranked[:HEATMAP_TOP], *_compared(trials, compare)]


def _compared(trials: pd.DataFrame, compare: list[int] | None) -> list[int]:
    """The trials compared: the chosen ones with a result (at most ``COMPARE_MAX``), else the best few."""
    scored = trials.loc[trials["best_miou"].notna(), "trial_id"]
    valid = [t for t in (compare or []) if t in set(scored)][:COMPARE_MAX]
    return valid or [int(t) for t in scored.head(COMPARE_DEFAULT)]


def _search_outputs(
    loaded: Board, statuses: list[str], knobs: dict[str, Any], cost: str | None, compare: list[int] | None
) -> tuple:
    """What a refresh draws for a search, in the order of ``_add_refresh``'s outputs."""
    trials = loaded.trials
    shown = filter_trials(trials, statuses, knobs)
    shown_ids = set(shown["trial_id"])
    curves = loaded.curves()
    curves = curves[curves["trial_id"].isin(shown_ids)]
    chosen = _compared(trials, compare)
    compare_options = menu_options(shown, trials, chosen)  # bounded: typed text finds the others
    counts = trials["status"].value_counts()
    summary = f"dataset {loaded.dataset} · search {loaded.status} · {len(trials)} trials: " + ", ".join(
        f"{n} {STATUS_STYLE.get(str(s), (str(s), ''))[0]}" for s, n in counts.items()
    )
    levels = figures.reference_levels(trials)  # from every trial: a filter does not move the bar
    compare_figures = (
        figures.genotype_diff(trials, chosen),
        figures.learning_curves(curves[curves["trial_id"].isin(chosen)]),
        figures.per_class_bars(loaded.per_class, trials, loaded.class_names, chosen),
        figures.cost_bars(trials, chosen),
    )
    ranked = shown.loc[shown["best_miou"].notna(), "trial_id"]
    population = int((shown["epochs_trained"] > 0).sum())
    figures_out = [
        figures.pareto_figure(shown, costs=(cost or "latency_ms",), references=levels),
        figures.learning_curves_overview(curves, list(ranked), levels, population=population),
        figures.best_so_far(shown),
        figures.parallel_knobs(shown),
        figures.knob_effects(shown),
        figures.per_class_heatmap(loaded.per_class, shown, loaded.class_names, top=HEATMAP_TOP),
        *compare_figures,
        figures.cross_search_figure(loaded.across, loaded.dataset),
    ]
    for figure in figures_out:  # a refresh keeps the reader's zoom and legend choices
        figure.update_layout(uirevision=loaded.search)
    present = {  # an optional column is shown when some trial has something in it
        key: column in trials and bool(trials[column].notna().any())
        for key, column in (("seeds", "seeds_n"), ("confirmed", "confirmed_n"), ("test_miou", "test_miou"))
    }
    shown = [c for c in COLUMNS if c.key not in OPTIONAL_COLUMNS or present.get(c.key, present["seeds"])]
    columns = with_proxy_columns(tuple(shown), trials)
    return (
        loaded.message() or "",
        summary,
        _SHOWN,
        _HIDDEN,
        [],
        column_defs(columns),
        _options(trials["status"], lambda s: STATUS_STYLE.get(s, (s, ""))[0]),
        *(_options(trials[knob].astype(str)) for knob in FILTER_KNOBS),
        compare_options,
        chosen if chosen != (compare or []) else no_update,
        *figures_out,
    )


def _add_navigation(app: Dash, store: Store) -> None:
    """Opening a trial (a table row or a Pareto point) and drawing the page its path names."""

    @app.callback(
        Output("url", "pathname"),
        Input("table", "cellClicked"),
        Input("pareto", "clickData", allow_optional=True),  # the plots come after the first rows
        prevent_initial_call=True,
    )
    def open_trial(cell: dict | None, click: dict | None) -> Any:
        """A click on a row or a Pareto point opens the trial; every click is a new event (the
        grid stamps it), so the same row opens again after coming back."""
        if ctx.triggered_id == "table" and cell and cell.get("rowId") is not None:
            return f"/trial/{int(cell['rowId'])}"
        if ctx.triggered_id == "pareto" and click and click.get("points"):
            trial_id = click["points"][0].get("customdata")
            if trial_id is not None:
                return f"/trial/{int(trial_id)}"
        return no_update

    @app.callback(
        Output("board", "style"),
        Output("detail", "style"),
        Output("detail", "children"),
        Input("url", "pathname"),
        Input("tick", "n_intervals"),
    )
    def route(pathname: str | None, _tick: int) -> tuple:
        """A pure function of the path: a tick that overtakes a navigation draws the same page
        (Dash drops the older answer), and ``uirevision`` keeps the reader's zoom."""
        match = _TRIAL_PATH.match(pathname or "/")
        if match is None:
            return _SHOWN, _HIDDEN, []
        trial_id = int(match.group(1))
        try:
            store.check(create=False)
            loaded = load_trial_board(store, trial_id)
        except StoreError as err:
            return _HIDDEN, _SHOWN, [dcc.Link("← back to the leaderboard", href="/"), html.P(str(err))]
        return _HIDDEN, _SHOWN, detail_page(loaded, trial_id, revision=str(trial_id))


def detail_page(board: Board, trial_id: int, revision: str | None = None) -> list:
    """One trial: what it is, what it cost, how it learned, and how to export it.

    ``revision`` keeps the reader's zoom on the plots when the page is redrawn (Plotly's uirevision).
    """
    row = board.trials[board.trials["trial_id"] == trial_id].iloc[0].to_dict()
    number = int(row["number"])
    facts = html.Dl(
        [part for label, text in detail_items(row) for part in (html.Dt(label), html.Dd(text, style=_DD))],
        style={"display": "grid", "gridTemplateColumns": "max-content auto", "gap": "0.2rem 1rem"},
    )
    error = row.get("error")
    return [
        dcc.Link("← back to the leaderboard", href=f"/?search={quote(board.search, safe='')}", id="back"),
        html.H2(
            f"Trial #{number} · {row['arch_id']} · {STATUS_STYLE.get(row['status'], (row['status'], ''))[0]}",
            id="detail-title",
        ),
        html.P(["search ", html.B(board.search, id="detail-search"), f" · dataset {board.dataset}"]),
        *([html.H3("Error"), html.Pre(error, id="error")] if isinstance(error, str) and error else []),
        html.H3("Cost and results"),
        facts,
        *_proxy_section(row),
        html.H3("Learning curve and per-class IoU"),
        dcc.Graph(
            id="detail-curve",
            figure=figures.learning_curves(board.curve(trial_id)).update_layout(uirevision=revision),
        ),
        dcc.Graph(
            id="detail-classes",
            figure=figures.per_class_bars(
                board.per_class, board.trials, board.class_names, [trial_id]
            ).update_layout(uirevision=revision),
        ),
        html.H3("Genotype"),
        html.Pre(pretty_genotype(row["genotype_json"]), id="genotype"),
        html.H3("Export it"),
        html.Pre(html.Code(board.export_command(number)), id="export-command"),
    ]


def _proxy_section(row: dict[str, Any]) -> list:
    """The zero-cost proxies' scores of the trial's network (value, seconds, error); none: nothing."""
    facts = proxy_facts(row)
    if not facts:
        return []
    head = html.Tr([html.Th(t, style=_CELL) for t in ("proxy", "value", "seconds", "error")])
    rows = [html.Tr([html.Td(text, style=_CELL) for text in fact]) for fact in facts]
    return [html.H3("Zero-cost proxies"), html.Table([html.Thead(head), html.Tbody(rows)], id="proxies")]


def benchmark_page(board: BenchmarkBoard) -> list:
    """A benchmark: its table over datasets, an error-bar plot per dataset, the method, the report.

    Dash renders every string here as text; the figures escape stored text themselves.
    """
    parts: list = []
    if not board.results.empty:
        parts += [html.H2("Architectures, ranked over datasets"), benchmark_table(board)]
        for i, dataset in enumerate(board.datasets):
            figure = figures.benchmark_figure(board.results, dataset).update_layout(uirevision=board.search)
            parts.append(dcc.Graph(id=f"benchmark-figure-{i}", figure=figure, config={"displaylogo": False}))
    failures = board.failures()
    if not failures.empty:
        parts += [
            html.H2("Failed runs"),
            html.Ul(
                [
                    html.Li([f"{r.label} on {r.dataset}, seed {int(r.seed)}: ", html.Code(str(r.error))])
                    for r in failures.itertuples()
                ],
                id="failures",
            ),
        ]
    parts += [
        html.H2("Method"),
        html.Ul([html.Li(line) for line in BENCHMARK_METHOD], id="method"),
        html.P("The report (Markdown tables, figures, CSV and how to reproduce):"),
        html.Pre(html.Code(board.report_command()), id="report-command"),
    ]
    return parts


def benchmark_table(board: BenchmarkBoard) -> html.Table:
    """The benchmark table as plain HTML: two header rows (the datasets over their columns)."""
    columns = board.columns
    cell = {"border": "1px solid #ddd", "padding": "0.3rem 0.5rem", "textAlign": "left"}
    head = {**cell, "backgroundColor": "#f3f3f3"}
    top = [html.Th(c.title, rowSpan=2, style=head) for c in columns if not c.group]
    top += [
        html.Th(d, colSpan=sum(1 for c in columns if c.group == d), style={**head, "textAlign": "center"})
        for d in board.datasets
    ]
    bottom = [html.Th(c.title, style=head) for c in columns if c.group]
    rows = []
    for row in board.table().to_dict("records"):
        cells = []
        for column in columns:
            tied = column.key.endswith("_group") and row[column.key.replace("_group", "_tied")]
            style = {**cell, "color": figures.TIED_COLOR, "fontWeight": 600} if tied else cell
            cells.append(html.Td(format_cell(row[column.key], column.kind), style=style))
        rows.append(html.Tr(cells))
    return html.Table(
        [html.Thead([html.Tr(top), html.Tr(bottom)]), html.Tbody(rows)],
        id="benchmark-table",
        style={"borderCollapse": "collapse", "fontSize": "13px"},
    )


def _options(values: pd.Series, label: Any = str) -> list[dict[str, str]]:
    return [{"label": label(v), "value": v} for v in sorted(set(values.dropna()))]


def _empty_outputs(message: str, knobs: int) -> tuple:
    blank = figures.message_figure("", message)
    figure_count = len(_FIGURES) + len(_COMPARE_FIGURES) + 1
    head: tuple[Any, ...] = (message, "", _SHOWN, _HIDDEN, [], no_update, [])
    return (*head, *([[]] * knobs), [], no_update, *([blank] * figure_count))


def serve(
    store_url: str | None = None,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    refresh_s: float = DEFAULT_REFRESH_S,
) -> None:
    """Run the live leaderboard until interrupted (loopback only unless ``host`` says otherwise)."""
    create_app(store_url, refresh_s).run(host=host, port=port, debug=False)
