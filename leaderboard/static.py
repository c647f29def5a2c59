"""The leaderboard as one self-contained HTML file: Plotly's JavaScript inlined once, no network.

The trials are in the file once, as one JSON block (``leaderboard._payload``); the page script
(``board.js``) draws the ranked table from it, only the rows in view (sorting and filtering
run over all rows in the page), and builds a trial's detail section (``#trial-<id>``) with
its plots when a click on its row (or on its point in a plot) first opens it. So the file
grows by a few hundred bytes per trial, and the overview plots are a fixed number of figures.

Every stored text reaches the page through ``html.escape`` (in the markup), Plotly's JSON
encoder (in the figures, which escapes ``<``, ``>`` and ``/``), the data block's escaping,
and ``textContent`` in the page, so a search named ``<script>...`` is shown, never run. A benchmark
gets its own page instead (``render_benchmark``): the table over datasets, an error-bar plot
per dataset, the method and the report command.
"""

from __future__ import annotations

import functools
import json
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from leaderboard import figures
from leaderboard._payload import board_payload, json_script
from leaderboard.data import BenchmarkBoard, Board, load_view
from leaderboard.table import (
    BENCHMARK_METHOD,
    STATUS_STYLE,
    format_cell,
    status_label,
    table_columns,
    table_frame,
)
from nasfcn.store import Store

#: Compared side by side in the static file: the best few candidates.
COMPARE_TOP = 4

_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 1300px; color: #222; }
header p, .muted { color: #555; }
nav a { margin-right: 1rem; }
section { margin: 2rem 0; }
.message { padding: .8rem 1rem; background: #fff6d6; border: 1px solid #e6c200; border-radius: 4px; }
table.trials { border-collapse: collapse; width: 100%; font-size: .88rem; }
table.trials th, table.trials td { border-bottom: 1px solid #ddd; padding: .3rem .45rem; text-align: left; }
table.trials th { cursor: pointer; background: #f3f3f3; position: sticky; top: 0; user-select: none; }
table.trials th[aria-sort="ascending"]::after { content: " ▲"; }
table.trials th[aria-sort="descending"]::after { content: " ▼"; }
table.trials tbody tr { cursor: pointer; }
table.trials tbody tr:hover { background: #eef5ff; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.note { max-width: 28rem; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.status { font-weight: 600; white-space: nowrap; }
.filters { margin: .5rem 0; display: flex; gap: 1rem; align-items: center; }
.table-scroll { max-height: 75vh; overflow: auto; }
table.trials tbody tr { height: 1.9rem; }
table.trials td { white-space: nowrap; }
div.overview { width: 100%; min-height: 260px; }
.detail { display: none; border-top: 3px solid #1f77b4; padding-top: 1rem; }
.detail:target, .detail.open { display: block; }
pre { background: #f6f6f6; padding: .6rem; overflow-x: auto; }
table.trials tr.reference td:first-child { box-shadow: inset 4px 0 0 #444; }
table.trials tr.reference td.note { font-weight: 600; }
table.bench { border-collapse: collapse; font-size: .88rem; }
table.bench th, table.bench td { border: 1px solid #ddd; padding: .3rem .5rem; text-align: left; }
table.bench thead th { background: #f3f3f3; }
table.bench th.dataset { text-align: center; }
table.bench td.tied { color: #1b9e77; font-weight: 600; }
table.bench td, td.seeds { white-space: nowrap; }
ul.method li { margin: .3rem 0; }
dl.cost { display: grid; grid-template-columns: max-content auto; gap: .2rem 1rem; }
dl.cost dt { color: #555; }
dl.cost dd { margin: 0; overflow-wrap: anywhere; }
table.proxies th, table.proxies td { padding: .1rem .8rem .1rem 0; text-align: left; }
"""

#: The page script: builds the table and the trial details from the data block (``board.js``).
_SCRIPT_FILE = Path(__file__).with_name("board.js")


def write_leaderboard(store: Store, path: Path, search: str | None = None) -> Path:
    """Write the leaderboard of ``search`` (default: the latest) to ``path``; returns the path.

    A benchmark gets the benchmark view (``render_benchmark``), any other search the board."""
    page = render(load_view(store, search, curves_only=True))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def render(board: Board | BenchmarkBoard) -> str:
    """The whole page for one search (or benchmark)."""
    if isinstance(board, BenchmarkBoard):
        return render_benchmark(board)
    parts = [_header(board)]
    message = board.message()
    if message:
        parts.append(f'<p class="message" id="message">{escape(message)}</p>')
    if board.trials.empty:
        return _page(f"nasfcn leaderboard · {board.search}", parts)
    curves, population = _drawn_curves(board)
    plots = _plots(board, curves, population)
    parts.append(
        "<nav>" + "".join(f'<a href="#{anchor}">{escape(title)}</a>' for anchor, title, _ in plots) + "</nav>"
    )
    frame = table_frame(board.trials)
    parts.append(_table_section(frame))
    specs: list[dict[str, Any]] = []  # every overview figure, drawn by the page script once the table works
    for anchor, title, figs in plots:
        divs = []
        for figure in figs:
            divs.append(f'<div class="overview" data-overview="{len(specs)}"></div>')
            specs.append(json.loads(pio.to_json(figure, validate=False)))
        parts.append(f'<section id="{anchor}"><h2>{escape(title)}</h2>{"".join(divs)}</section>')
    parts.append('<div id="details"></div>')
    payload = {**board_payload(board, curves, frame), "figures": specs}
    parts.append(json_script(payload, "board-data"))
    parts.append(_plotly_js())
    script = _SCRIPT_FILE.read_text(encoding="utf-8")
    return _page(f"nasfcn leaderboard · {board.search}", parts, script)


@functools.cache
def _plotly_js() -> str:
    """Plotly's JavaScript, inlined once (as ``plotly.io.to_html`` inlines it: no network)."""
    return (
        f"<script>window.PlotlyConfig = {{MathJaxConfig: 'local'}};</script><script>{get_plotlyjs()}</script>"
    )


def _page(title: str, parts: list[str], script: str = "") -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(parts)
        + (f"<script>{script}</script>" if script else "")
        + "</body></html>\n"
    )


def render_benchmark(board: BenchmarkBoard) -> str:
    """The page of one benchmark: the table over datasets, an error-bar plot per dataset, the method."""
    others = [n for n in board.searches["name"] if n != board.search]
    also = f"Other searches in this database: {', '.join(others[:10])}." if others else ""
    parts = [
        f'<header><h1>Benchmark: <span id="search-name">{escape(board.search)}</span></h1>'
        f"<p>datasets <b>{escape(', '.join(board.datasets))}</b> · benchmark {escape(board.status)} · "
        f"{escape(board.summary())} · {escape(board.database)}</p>"
        f'<p class="muted">{escape(also)} Made by <code>nasfcn leaderboard</code>; '
        "<code>nasfcn serve</code> shows it live.</p></header>"
    ]
    message = board.message()
    if message:
        parts.append(f'<p class="message" id="message">{escape(message)}</p>')
    if not board.results.empty:
        parts.append(
            '<section id="benchmark"><h2>Architectures, ranked over datasets</h2>'
            f"{_benchmark_table(board)}</section>"
        )
        for i, dataset in enumerate(board.datasets):
            figure = _figure_div(figures.benchmark_figure(board.results, dataset), include_plotlyjs=i == 0)
            parts.append(f'<section id="dataset-{i}"><h2>{escape(dataset)}</h2>{figure}</section>')
    failures = board.failures()
    if not failures.empty:
        items = "".join(
            f"<li>{escape(str(r.label))} on {escape(str(r.dataset))}, seed {int(r.seed)}: "
            f"<code>{escape(str(r.error or 'no error recorded'))}</code></li>"
            for r in failures.itertuples()
        )
        parts.append(f'<section id="failures"><h2>Failed runs</h2><ul>{items}</ul></section>')
    method = "".join(f"<li>{escape(line)}</li>" for line in BENCHMARK_METHOD)
    parts.append(
        f'<section id="method"><h2>Method</h2><ul class="method">{method}</ul>'
        "<p>The report (Markdown tables, figures, CSV and how to reproduce):</p>"
        f'<pre><code id="report-command">{escape(board.report_command())}</code></pre></section>'
    )
    return _page(f"nasfcn benchmark · {board.search}", parts)


def _benchmark_table(board: BenchmarkBoard) -> str:
    columns = board.columns
    top, bottom = [], []
    for column in columns:
        if not column.group:
            top.append(f'<th rowspan="2" scope="col">{escape(column.title)}</th>')
        else:
            bottom.append(f'<th scope="col">{escape(column.title)}</th>')
    for dataset in board.datasets:
        span = sum(1 for c in columns if c.group == dataset)
        top.append(f'<th colspan="{span}" class="dataset" scope="colgroup">{escape(dataset)}</th>')
    rows = []
    for row in board.table().to_dict("records"):
        cells = []
        for column in columns:
            tied = column.key.endswith("_group") and row[column.key.replace("_group", "_tied")]
            classes = "tied" if tied else ("num" if column.kind != "text" else "")
            cells.append(f'<td class="{classes}">{escape(format_cell(row[column.key], column.kind))}</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (
        f'<table class="bench" id="benchmark-table"><thead><tr>{"".join(top)}</tr><tr>{"".join(bottom)}</tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _header(board: Board) -> str:
    counts = board.trials["status"].value_counts()
    summary = ", ".join(f"{n} {status_label(s)}" for s, n in counts.items()) or "no trials"
    others = [n for n in board.searches["name"] if n != board.search]
    also = f" Other searches in this database: {', '.join(others[:10])}." if others else ""
    return (
        f'<header><h1>Leaderboard: <span id="search-name">{escape(board.search)}</span></h1>'
        f"<p>dataset <b>{escape(board.dataset)}</b> · search {escape(board.status)} · "
        f"{len(board.trials)} trials ({escape(summary)}) · {escape(board.database)}</p>"
        f'<p class="muted">{escape(also)} Click a row for the trial\'s details. Made by '
        "<code>nasfcn leaderboard</code>; <code>nasfcn serve</code> shows it live.</p></header>"
    )


def _drawn_curves(board: Board) -> tuple[pd.DataFrame, int | None]:
    """The epochs the plots draw from, and how many trials have curves when that is more than
    they hold (None: all). A search's are every trial's; an arena's trials share curves
    (``Board.curve_source``), so only those the plots show get theirs: the learning curves'
    best and sample (``figures.curve_sample``, as the live app reads them) and the compared."""
    if board.curve_source is None:
        return board.curves(), None
    trials = board.trials
    ids = trials.loc[trials["epochs_trained"] > 0, "trial_id"].to_numpy()
    ranked = [int(t) for t in board.scored["trial_id"]]
    best, sample = figures.curve_sample(ids, ranked)
    return board.curves([*best, *sample.tolist(), *ranked[:COMPARE_TOP]]), len(ids)


def _plots(
    board: Board, curves: pd.DataFrame, population: int | None = None
) -> list[tuple[str, str, list[go.Figure]]]:
    """The overview plots: a fixed number of figures whatever the number of trials (big
    searches get WebGL points and a sample of learning curves, see ``figures``);
    ``population``: ``_drawn_curves``'."""
    trials = board.trials
    chosen = [int(t) for t in board.scored["trial_id"].head(COMPARE_TOP)]
    levels = figures.reference_levels(trials)
    return [
        ("pareto", "Pareto front", [figures.pareto_figure(trials, references=levels)]),
        (
            "curves",
            "Learning curves",
            [
                figures.learning_curves_overview(
                    curves, board.scored["trial_id"], levels, population=population
                ),
                figures.best_so_far(trials),
            ],
        ),
        ("knobs", "Architecture knobs", [figures.parallel_knobs(trials), figures.knob_effects(trials)]),
        ("classes", "Per-class IoU", [figures.per_class_heatmap(board.per_class, trials, board.class_names)]),
        (
            "compare",
            f"Compare the top {len(chosen)} candidates",
            [
                figures.genotype_diff(trials, chosen),
                figures.learning_curves(curves[curves["trial_id"].isin(chosen)]),
                figures.per_class_bars(board.per_class, trials, board.class_names, chosen),
                figures.cost_bars(trials, chosen),
            ],
        ),
        ("across", "Across searches", [figures.cross_search_figure(board.across, board.dataset)]),
    ]


def _figure_div(figure: go.Figure, include_plotlyjs: bool) -> str:
    return pio.to_html(
        figure,
        full_html=False,
        include_plotlyjs=include_plotlyjs,
        config={"responsive": True, "displaylogo": False},
        default_width="100%",
    )


def _table_section(frame: pd.DataFrame) -> str:
    """The table's header and filters (``frame``: ``table_frame``); the page script fills in
    the rows in view."""
    columns = table_columns(frame)
    head = "".join(f'<th data-kind="{c.kind}" scope="col">{escape(c.title)}</th>' for c in columns)
    present = set(frame["status_key"].tolist())
    options = "".join(
        f'<option value="{escape(s)}">{escape(label)}</option>'
        for s, (label, _) in STATUS_STYLE.items()
        if s in present
    )
    return (
        '<section id="table"><h2>Trials, ranked by val mIoU</h2><div class="filters">'
        '<label>filter <input id="filter-text" type="search" placeholder="arch_id, knob, error..."></label>'
        f'<label>status <select id="filter-status"><option value="">all</option>{options}</select></label>'
        '<span id="row-count" class="muted"></span></div>'
        '<div class="table-scroll" id="table-scroll"><div id="table-pad">'
        f'<table class="trials" id="trials"><thead><tr>{head}</tr></thead><tbody></tbody></table>'
        "</div></div></section>"
    )
