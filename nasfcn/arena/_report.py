"""What an arena reports: the machine-readable summary (``--json``) and one HTML file (``--html``).

The JSON holds figures only (no timestamps, no timings), so the same arena with the same
``--seed`` writes the same file. Numbers that do not exist are ``null``: an epochs-to-target
median of ``null`` means the median repeat never reached the target; a ``p_value`` of ``null``
is the baseline's own row (or every row of an arena without its default baseline, random + FIFO).
Each pair also lists its repeats (``per_repeat``, in seed order), so a paired test between any
two pairs can be computed from the file alone: repeat r of every pair replayed with seed + r.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

import numpy as np
import pandas as pd

from nasfcn.arena._measure import BASELINE, ArenaSummary
from nasfcn.arena._replay import pair_name
from nasfcn.arena._run import ArenaRun
from nasfcn.report_html import PAGE_END, FigureWriter, page_start
from nasfcn.store import software_versions

#: The JSON summary's format; bumped when a key changes meaning (a new key, such as ``per_repeat``,
#: keeps it: readers of /1 ignore keys they do not know).
JSON_FORMAT = "nasfcn.arena/1"
#: Per pair: the measured figures with a bootstrap interval (median, low, high).
INTERVAL_FIGURES = ("epochs_to_target", "regret_at_budget", "winners_curse")
#: Per repeat of a pair (``per_repeat``): its seed and what it measured.
REPEAT_FIGURES = ("regret_at_budget", "final_regret", "winners_curse")


def arena_json(run: ArenaRun) -> dict[str, Any]:
    """The ``--json`` summary: the arena's settings, the table, the target, then one entry per pair."""
    plan, table = run.plan, run.board.table
    versions = software_versions()
    for package in ("numpy", "scipy", "pandas"):
        versions[package] = _version(package)
    return {
        "format": JSON_FORMAT,
        "name": run.name,
        "table": {
            "name": run.table_name,
            "hash": run.table_hash,
            "space_name": table.facts.get("space_name"),
            "space_hash": table.space_hash,
            "architectures": len(run.board.archs),
            "seeds": list(table.seeds),
            "epochs": table.epochs,
        },
        "target": {
            "miou": run.target.value,
            "spec": run.target.spec,
            "architectures_reaching": run.target.reaching,
        },
        "budget_epochs": run.summary.budget,
        **plan.settings(),
        "baseline": pair_name(run.summary.baseline),
        "versions": versions,
        "pairs": [
            {**_pair(row), "per_repeat": _repeats(run.summary.per_repeat, row["pair"])}
            for row in run.summary.summary.to_dict("records")
        ],
    }


def _repeats(per_repeat: pd.DataFrame, pair: str) -> list[dict[str, Any]]:
    """One pair's repeats in seed order: seed, epochs, epochs to target (None: never), regrets,
    the winner's curse and whether it reached the target."""
    rows = per_repeat[per_repeat["pair"] == pair].sort_values("seed", kind="stable")
    out = []
    for row in rows.to_dict("records"):
        to_target = _number(row["epochs_to_target"])
        entry: dict[str, Any] = {
            "seed": int(row["seed"]),
            "epochs": int(row["epochs"]),
            "epochs_to_target": None if to_target is None else int(to_target),
        }
        entry.update({name: _number(row[name]) for name in REPEAT_FIGURES})
        entry["reached"] = bool(row["reached"])
        out.append(entry)
    return out


def _pair(row: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "pair": row["pair"],
        "strategy": row["strategy"],
        "scheduler": row["scheduler"],
        "repeats": int(row["repeats"]),
    }
    for name in INTERVAL_FIGURES:
        entry[name] = {part: _number(row[name + suffix]) for part, suffix in _PARTS}
    entry["reached_share"] = _number(row["reached_share"])
    entry["p_value"] = _number(row["p_value"])
    entry["p_holm"] = _number(row["p_holm"])
    entry["mean_rank"] = _number(row["mean_rank"])
    return entry


_PARTS = (("median", ""), ("low", "_low"), ("high", "_high"))


def _number(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


# -- HTML ------------------------------------------------------------------------------------
#: One colour per pair, the same in every figure.
_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
#: (section id, title, what it shows): the report's figures, in order.
FIGURES = (
    (
        "regret-epochs",
        "Regret over epochs trained",
        "Median over repeats (band: 95% bootstrap CI) of the table's best mean val mIoU minus the true "
        "mean of the architecture the search would export (its best single run so far).",
    ),
    (
        "regret-time",
        "Regret over simulated wall time",
        "The same regret against the simulated clock: concurrency workers, the table's epoch seconds.",
    ),
    (
        "epochs-to-target",
        "Epochs to target (ECDF)",
        "Share of repeats whose exported architecture reached the target within that many epochs; "
        "a curve that stays below 1 has repeats that never did.",
    ),
    (
        "ranks",
        "Mean rank over epoch budgets",
        "Each repeat ranks the pairs by regret at the budget (1 = lowest); averaged over repeats.",
    ),
)


def render_arena_html(run: ArenaRun) -> str:
    """One self-contained HTML file: Plotly inlined once, every stored text escaped."""
    summary = run.summary
    pairs = list(summary.summary["pair"])
    colour = {pair: _COLOURS[i % len(_COLOURS)] for i, pair in enumerate(pairs)}
    figures = [
        _curve_figure(summary.epoch_curves, "epochs", "epochs trained", colour),
        _curve_figure(summary.time_curves, "time", "simulated wall time (s)", colour),
        _ecdf_figure(summary, colour),
        _rank_figure(summary.ranks, colour),
    ]
    parts = [
        page_start(f"Arena {run.name}"),
        f"<p class='muted'>{escape(_facts_line(run))}</p>",
        f"<p>Target: {escape(run.target.describe())}. Regret at equal epochs is compared at "
        f"{summary.budget} epochs; p: Wilcoxon signed-rank against "
        f"{escape(pair_name(summary.baseline))} (the baseline), paired by repeat, Holm-adjusted.</p>",
        "<section id='summary'><h2>Summary</h2>" + summary_table_html(summary) + "</section>",
    ]
    figure_html = FigureWriter()
    for (anchor, heading, text), figure in zip(FIGURES, figures, strict=True):
        parts.append(
            f"<section id='{anchor}'><h2>{escape(heading)}</h2><p>{escape(text)}</p>"
            f"{figure_html(figure)}</section>"
        )
    parts.append(PAGE_END)
    return "\n".join(parts)


def _facts_line(run: ArenaRun) -> str:
    plan = run.plan
    return (
        f"table {run.table_name} (hash {run.table_hash[:12]}, {len(run.board.archs)} architectures x "
        f"{len(run.board.table.seeds)} seeds x {run.board.table.epochs} epochs); "
        f"{len(plan.strategies) * len(plan.schedulers)} strategy x scheduler pairs x {plan.repeats} repeats "
        f"x {plan.trials} trials, concurrency {plan.concurrency}, seed {plan.seed}"
    )


def summary_table_html(summary: ArenaSummary) -> str:
    head = (
        "<tr><th>strategy + scheduler</th><th>epochs to target [95% CI]</th><th>reached</th>"
        f"<th>regret at {summary.budget} epochs [95% CI]</th>"
        f"<th>p vs {escape(pair_name(summary.baseline))} (Holm)</th>"
        "<th>mean rank</th><th>winner's curse [95% CI]</th></tr>"
    )
    rows = []
    for row in summary.summary.to_dict("records"):
        pair, *cells = summary_cells(row, summary.baseline)
        rows.append(
            f"<tr><td>{escape(pair)}</td>"
            + "".join(f"<td class='num'>{escape(c)}</td>" for c in cells)
            + "</tr>"
        )
    return f"<table id='summary-table'>{head}{''.join(rows)}</table>"


def summary_cells(row: dict[str, Any], baseline: tuple[str, str] = BASELINE) -> list[str]:
    """One pair's summary row as text, as the terminal and the HTML table show it: pair, epochs
    to target, share reached, regret at the budget, Holm p vs ``baseline``, mean rank, curse."""
    return [
        str(row["pair"]),
        interval(row, "epochs_to_target", 0),
        f"{row['reached_share']:.0%}",
        interval(row, "regret_at_budget", 4),
        p_text(row, baseline),
        number_text(row["mean_rank"], 2),
        interval(row, "winners_curse", 4),
    ]


def interval(row: dict[str, Any], name: str, digits: int) -> str:
    """``median [low, high]``; an infinite epochs-to-target reads "never"."""
    median, low, high = (number_text(row[name + s], digits) for s in ("", "_low", "_high"))
    return f"{median} [{low}, {high}]"


def number_text(value: float, digits: int) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "never"
    return f"{value:.{digits}f}"


def p_text(row: dict[str, Any], baseline: tuple[str, str] = BASELINE) -> str:
    if math.isnan(row["p_value"]):
        return "baseline" if (row["strategy"], row["scheduler"]) == tuple(baseline) else "n/a"
    p = row["p_holm"]
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _curve_figure(curves: pd.DataFrame, axis: str, title: str, colour: dict[str, str]) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    for pair, points in curves.groupby("pair", sort=False):  # arrays: Plotly checks lists item by item
        x, group = points[axis].to_numpy(), str(pair)
        fig.add_trace(_band_edge(x, points["high"].to_numpy(), group))
        fig.add_trace(_band_edge(x, points["low"].to_numpy(), group, fill=_faded(colour[group])))
        fig.add_trace(
            go.Scatter(
                x=x,
                y=points["median"].to_numpy(),
                mode="lines",
                name=str(pair),
                line={"color": colour[str(pair)], "shape": "hv"},
                legendgroup=str(pair),
            )
        )
    fig.update_layout(xaxis_title=title, yaxis_title="regret (val mIoU below the best mean)", height=420)
    return fig


def _band_edge(x: np.ndarray, y: np.ndarray, group: str, fill: str | None = None) -> Any:
    """One edge of a pair's CI band: an invisible line; the lower edge (``fill``) shades down to
    the upper one drawn just before it (Plotly's ``tonexty``)."""
    import plotly.graph_objects as go

    shade = {"fill": "tonexty", "fillcolor": fill} if fill else {}
    return go.Scatter(
        x=x,
        y=y,
        mode="lines",
        line={"width": 0},
        showlegend=False,
        hoverinfo="skip",
        legendgroup=group,
        **shade,
    )


def _ecdf_figure(summary: ArenaSummary, colour: dict[str, str]) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    repeats = summary.per_repeat
    for pair, group in repeats.groupby("pair", sort=False):
        values = np.sort(group["epochs_to_target"].to_numpy(dtype=float))
        reached = values[np.isfinite(values)]
        shares = np.arange(1, len(reached) + 1) / len(values)
        last = float(max(group["epochs"].max(), reached[-1] if len(reached) else 0))
        x = [0.0, *reached.tolist(), last]
        y = [0.0, *shares.tolist(), float(shares[-1]) if len(shares) else 0.0]
        fig.add_trace(
            go.Scatter(
                x=x, y=y, mode="lines", name=str(pair), line={"color": colour[str(pair)], "shape": "hv"}
            )
        )
    fig.update_layout(
        xaxis_title="epochs trained",
        yaxis_title="share of repeats at the target",
        yaxis_range=[0, 1.05],
        height=420,
    )
    return fig


def _rank_figure(ranks: pd.DataFrame, colour: dict[str, str]) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    for pair, points in ranks.groupby("pair", sort=False):
        fig.add_trace(
            go.Scatter(
                x=points["epochs"].tolist(),
                y=points["mean_rank"].tolist(),
                mode="lines+markers",
                name=str(pair),
                line={"color": colour.get(str(pair), "#444")},
            )
        )
    fig.update_layout(xaxis_title="epoch budget", yaxis_title="mean rank (1 = lowest regret)", height=420)
    fig.update_yaxes(autorange="reversed")
    return fig


def _faded(hex_colour: str) -> str:
    red, green, blue = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},0.18)"
