"""The leaderboard as one self-contained HTML file: Plotly's JavaScript inlined once, no network.

Every stored text reaches the page through ``html.escape`` (in the markup) or Plotly's JSON
encoder (in the figures, which escapes ``<``, ``>`` and ``/``), so a search named
``<script>...`` is shown, never run. Each trial has a detail section (``#trial-<id>``) that a
click on its row opens; its two plots are drawn only when it is first opened. A benchmark
gets its own page instead (``render_benchmark``): the table over datasets, an error-bar plot
per dataset, the method and the report command.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from leaderboard import figures
from leaderboard.data import BenchmarkBoard, Board, load_view
from leaderboard.table import (
    BENCHMARK_METHOD,
    STATUS_STYLE,
    Column,
    detail_items,
    format_cell,
    pretty_genotype,
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
.detail { display: none; border-top: 3px solid #1f77b4; padding-top: 1rem; }
.detail:target { display: block; }
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
"""

_SCRIPT = """
(function () {
  var table = document.getElementById("trials");
  if (table) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var text = document.getElementById("filter-text");
    var status = document.getElementById("filter-status");
    var count = document.getElementById("row-count");
    function filter() {
      var needle = text.value.toLowerCase(), wanted = status.value, shown = 0;
      rows.forEach(function (row) {
        var ok = (!wanted || row.dataset.status === wanted) &&
                 (!needle || row.textContent.toLowerCase().indexOf(needle) >= 0);
        row.hidden = !ok;
        if (ok) { shown += 1; }
      });
      count.textContent = shown + " of " + rows.length + " trials";
    }
    text.addEventListener("input", filter);
    status.addEventListener("change", filter);
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      th.addEventListener("click", function () {
        var numeric = th.dataset.kind !== "text";
        var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
        Array.prototype.forEach.call(table.tHead.rows[0].cells, function (o) {
          o.removeAttribute("aria-sort");
        });
        th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
        rows.sort(function (a, b) {
          var x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
          if (x === "" || y === "") { return (x === "") - (y === ""); }
          if (numeric) { return dir * (parseFloat(x) - parseFloat(y)); }
          return dir * x.localeCompare(y);
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
    rows.forEach(function (row) {
      function open() { window.location.hash = "trial-" + row.dataset.trial; }
      row.addEventListener("click", open);
      row.addEventListener("keydown", function (e) { if (e.key === "Enter") { open(); } });
    });
    filter();
  }
  function drawDetail() {
    var section = document.getElementById(window.location.hash.slice(1));
    if (!section || !section.classList.contains("detail")) { return; }
    section.querySelectorAll("div[data-figure]").forEach(function (div) {
      if (div.dataset.drawn) { return; }
      var spec = JSON.parse(document.getElementById(div.dataset.figure).textContent);
      Plotly.newPlot(div, spec.data, spec.layout, {responsive: true});
      div.dataset.drawn = "1";
    });
    section.scrollIntoView();
  }
  window.addEventListener("hashchange", drawDetail);
  drawDetail();
})();
"""


def write_leaderboard(store: Store, path: Path, search: str | None = None) -> Path:
    """Write the leaderboard of ``search`` (default: the latest) to ``path``; returns the path.

    A benchmark gets the benchmark view (``render_benchmark``), any other search the board."""
    page = render(load_view(store, search))
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
    plots = _plots(board) if not board.trials.empty else []
    if plots:
        parts.append(
            "<nav>"
            + "".join(f'<a href="#{anchor}">{escape(title)}</a>' for anchor, title, _ in plots)
            + "</nav>"
        )
    if not board.trials.empty:
        parts.append(_table_section(board))
    first = True
    for anchor, title, figs in plots:
        body = []
        for figure in figs:
            body.append(_figure_div(figure, include_plotlyjs=first))
            first = False
        parts.append(f'<section id="{anchor}"><h2>{escape(title)}</h2>{"".join(body)}</section>')
    curves = board.curves()
    parts.extend(_detail(board, row, curves) for row in board.trials.to_dict("records"))
    return _page(f"nasfcn leaderboard · {board.search}", parts, _SCRIPT)


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


def _plots(board: Board) -> list[tuple[str, str, list[go.Figure]]]:
    trials, curves = board.trials, board.curves()
    chosen = [int(t) for t in board.scored["trial_id"].head(COMPARE_TOP)]
    levels = figures.reference_levels(trials)
    return [
        ("pareto", "Pareto front", [figures.pareto_figure(trials, references=levels)]),
        (
            "curves",
            "Learning curves",
            [figures.learning_curves(curves, levels), figures.best_so_far(trials)],
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


def _table_section(board: Board) -> str:
    frame = table_frame(board.trials)
    columns = table_columns(frame)
    head = "".join(f'<th data-kind="{c.kind}" scope="col">{escape(c.title)}</th>' for c in columns)
    body = "".join(_row(row, columns) for row in frame.to_dict("records"))
    options = "".join(
        f'<option value="{escape(s)}">{escape(label)}</option>'
        for s, (label, _) in STATUS_STYLE.items()
        if s in set(frame["status_key"])
    )
    return (
        '<section id="table"><h2>Trials, ranked by val mIoU</h2><div class="filters">'
        '<label>filter <input id="filter-text" type="search" placeholder="arch_id, knob, error..."></label>'
        f'<label>status <select id="filter-status"><option value="">all</option>{options}</select></label>'
        '<span id="row-count" class="muted"></span></div>'
        f'<table class="trials" id="trials"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        "</section>"
    )


def _row(row: dict[str, object], columns: tuple[Column, ...]) -> str:
    cells = []
    for column in columns:
        value = row[column.key]
        missing = value is None or (isinstance(value, float) and pd.isna(value))
        sort_value = "" if missing else str(value)
        classes = "num" if column.kind != "text" else column.key
        style = ""
        if column.key == "status":
            classes = "status"
            sort_value = str(row["status_key"])
            style = f' style="color:{STATUS_STYLE.get(str(row["status_key"]), ("", "#444"))[1]}"'
        text = escape(format_cell(value, column.kind))
        cells.append(f'<td class="{classes}" data-v="{escape(sort_value)}"{style}>{text}</td>')
    status = escape(str(row["status_key"]))
    marked = ' class="reference"' if isinstance(row.get("reference"), str) else ""
    return (
        f'<tr data-trial="{int(row["id"])}" data-status="{status}"{marked} tabindex="0">'  # type: ignore[call-overload]
        f"{''.join(cells)}</tr>"
    )


def _detail(board: Board, trial: dict[str, Any], curves: pd.DataFrame) -> str:
    trial_id, number = int(trial["trial_id"]), int(trial["number"])
    curve = figures.learning_curves(curves[curves["trial_id"] == trial_id])
    classes = figures.per_class_bars(board.per_class, board.trials, board.class_names, [trial_id])
    specs = []
    for i, figure in enumerate((curve, classes)):
        spec_id = f"spec-{trial_id}-{i}"
        specs.append(
            f'<div data-figure="{spec_id}" class="detail-figure"></div>'
            f'<script type="application/json" id="{spec_id}">{pio.to_json(figure)}</script>'
        )
    error = trial["error"]
    error_html = (
        f'<h3>Error</h3><pre class="error">{escape(error)}</pre>' if isinstance(error, str) and error else ""
    )
    facts = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in detail_items(trial))
    return (
        f'<section class="detail" id="trial-{trial_id}"><a href="#table">← back to the table</a>'
        f"<h2>Trial #{number} · {escape(str(trial['arch_id']))} · {escape(status_label(trial['status']))}"
        "</h2>"
        f'{error_html}<h3>Cost and results</h3><dl class="cost">{facts}</dl>'
        f"<h3>Curves and per-class IoU</h3>{''.join(specs)}"
        f"<h3>Genotype</h3><pre>{escape(pretty_genotype(trial['genotype_json']))}</pre>"
        f"<h3>Export it</h3><pre><code>{escape(board.export_command(number))}</code></pre></section>"
    )
