"""What a table shows (``nasfcn tabulate report``): the statistics, then one self-contained HTML file.

The statistics are ``nasfcn.stats``'s (their methods are in its docstring); this module only
picks what they are computed on: final-epoch val mIoU, per run for the intra-class
correlation, averaged over seeds everywhere else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Any

import numpy as np

from nasfcn.report_html import PAGE_END, FigureWriter, page_start
from nasfcn.stats import ICC, KnobEffect, fidelity, icc1, knob_effect, pareto_mask
from nasfcn.table._table import Table

METRIC = "val_miou"


@dataclass(frozen=True)
class TableReport:
    """The figures of one table; ``render_html`` draws them."""

    source: str
    archs: tuple[str, ...]
    means: tuple[float, ...]  # per architecture, final epoch, over seeds
    latency_ms: tuple[float, ...]
    icc: ICC
    effects: tuple[KnobEffect, ...]
    knob_values: dict[str, tuple[str, ...]]  # knob -> each architecture's value (archs order)
    fidelity: tuple[float, ...]  # Spearman rho of epoch k's means vs the final ones, k = 1..E
    pareto: tuple[bool, ...]
    failed_runs: int


def table_report(table: Table) -> TableReport:
    """Compute every figure of the report from the table's final-epoch mIoU."""
    final = table.values(METRIC)[:, :, -1]
    means = table.means(METRIC)
    knobs = architecture_knobs(table)
    effects = tuple(knob_effect(knob, _grouped(values, means)) for knob, values in knobs.items())
    latency = np.asarray([table.cost(a).latency_ms for a in table.archs()])
    by_epoch = np.stack([table.means(METRIC, k) for k in range(1, table.epochs + 1)], axis=1)
    statuses = [table.status(a, s) for a in table.archs() for s in table.seeds]
    return TableReport(
        source=table.source,
        archs=tuple(table.archs()),
        means=tuple(float(m) for m in means),
        latency_ms=tuple(float(v) for v in latency),
        icc=icc1([list(row) for row in final]),
        effects=effects,
        knob_values=knobs,
        fidelity=tuple(fidelity(by_epoch)),
        pareto=tuple(pareto_mask(list(means), list(latency))),
        failed_runs=sum(status == "failed" for status in statuses),
    )


def architecture_knobs(table: Table) -> dict[str, tuple[str, ...]]:
    """Every genotype field (per-stage ones as a whole) that differs between the table's
    architectures, with each architecture's value as text: the knobs whose effect is measured.

    A field that groups the architectures exactly as an earlier one does (``attention.where``
    only set when ``attention.type`` is not none) is left out: its effect is the other's.
    """
    flat = [_flatten(table.genotype(a).arch_dict()) for a in table.archs()]
    fields = sorted({name for row in flat for name in row})
    knobs: dict[str, tuple[str, ...]] = {}
    seen: set[tuple[int, ...]] = set()
    for name in fields:
        values = tuple(_text(row.get(name)) for row in flat)
        grouping = _grouping(values)
        if len(set(values)) > 1 and grouping not in seen:  # a knob that only mirrors another is left out
            seen.add(grouping)
            knobs[name] = values
    return knobs


def _grouping(values: tuple[str, ...]) -> tuple[int, ...]:
    """Which architectures share a value (the values themselves aside)."""
    first: dict[str, int] = {}
    return tuple(first.setdefault(value, len(first)) for value in values)


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "/".join(str(v) for v in value)
    return "-" if value is None else str(value)


def _grouped(values: tuple[str, ...], means: np.ndarray) -> dict[str, list[float]]:
    groups: dict[str, list[float]] = {}
    for value, mean in zip(values, means, strict=True):
        groups.setdefault(value, []).append(float(mean))
    return dict(sorted(groups.items()))


# -- HTML ------------------------------------------------------------------------------------
def render_html(report: TableReport, table: Table) -> str:
    """One HTML file: Plotly's JavaScript inlined once, every stored text escaped."""
    import plotly.graph_objects as go

    facts = table.facts
    title = f"Table {facts.get('name') or report.source}"
    parts = [
        page_start(title),
        "<p class='muted'>"
        + escape(
            f"space {facts.get('space_name')} (hash {facts.get('space_hash')}), "
            f"dataset {facts.get('dataset')}, "
            f"{len(report.archs)} architectures x {len(table.seeds)} seeds x {table.epochs} epochs; "
            f"{report.failed_runs} failed runs; built {facts.get('built_at')}"
        )
        + "</p>",
    ]
    figure = FigureWriter()
    histogram = go.Figure(go.Histogram(x=list(report.means), nbinsx=30))
    histogram.update_layout(xaxis_title="mean final val mIoU over seeds", yaxis_title="architectures")
    parts += ["<section><h2>Distribution of architecture means</h2>", figure(histogram), "</section>"]
    parts += [
        "<section><h2>Variance between architectures and seeds</h2>",
        _icc_html(report.icc),
        "</section>",
    ]
    parts.append("<section><h2>What matters: the main effect of each knob</h2>")
    for effect in report.effects:
        parts += [
            f"<h3>{escape(effect.knob)}</h3>",
            figure(_effect_figure(effect, report)),
            _pairs_html(effect),
        ]
    parts.append("</section>")
    rho = go.Figure(
        go.Scatter(x=list(range(1, len(report.fidelity) + 1)), y=list(report.fidelity), mode="lines+markers")
    )
    rho.update_layout(
        xaxis_title="epoch k", yaxis_title="Spearman rho (epoch-k means vs final)", yaxis_range=[-1, 1.05]
    )
    parts += ["<section><h2>Fidelity: how early can architectures be ranked?</h2>", figure(rho), "</section>"]
    parts += [
        "<section><h2>mIoU vs latency: the Pareto front</h2>",
        figure(_pareto_figure(report)),
        "</section>",
    ]
    parts.append(PAGE_END)
    return "\n".join(parts)


def _icc_html(icc: ICC) -> str:
    return (
        f"<p>Intra-class correlation ICC(1) of final val mIoU (architectures as groups, seeds as repeats): "
        f"<b>{_f(icc.icc)}</b>, 95% CI [{_f(icc.ci_low)}, {_f(icc.ci_high)}] "
        f"(F = {_f(icc.f, 2)}, p = {_p(icc.p_value)}; {icc.groups} architectures, k = {_f(icc.repeats, 2)}). "
        "It is the share of the run-to-run variance that lies between architectures rather than "
        "between seeds of one architecture.</p>"
    )


def _effect_figure(effect: KnobEffect, report: TableReport) -> Any:
    import plotly.graph_objects as go

    values = report.knob_values[effect.knob]
    fig = go.Figure()
    for level, summary in effect.levels.items():
        points = [m for v, m in zip(values, report.means, strict=True) if v == level]
        fig.add_trace(go.Box(y=points, name=level, boxpoints="all", jitter=0.4, pointpos=0, showlegend=False))
        if not math.isnan(summary.ci_low):
            fig.add_trace(
                go.Scatter(
                    x=[level],
                    y=[summary.mean],
                    mode="markers",
                    marker={"color": "black", "symbol": "diamond"},
                    error_y={"type": "data", "array": [summary.half_width]},
                    showlegend=False,
                    name=f"{level}: mean and 95% CI",
                )
            )
    fig.update_layout(yaxis_title="mean final val mIoU", xaxis_title=effect.knob, height=360)
    return fig


def _pairs_html(effect: KnobEffect) -> str:
    rows = [
        f"<tr><td>{escape(level)}</td><td class='num'>{s.n}</td><td class='num'>{_f(s.mean)}</td>"
        f"<td class='num'>[{_f(s.ci_low)}, {_f(s.ci_high)}]</td></tr>"
        for level, s in effect.levels.items()
    ]
    pairs = [
        f"<tr><td>{escape(p.a)} - {escape(p.b)}</td><td class='num'>{_f(p.test.mean_difference)}</td>"
        f"<td class='num'>{_p(p.test.p_value)}</td><td class='num'>{_p(p.p_adjusted)}</td></tr>"
        for p in effect.pairs
    ]
    return (
        "<table><tr><th>value</th><th>architectures</th><th>mean</th><th>95% CI</th></tr>"
        + "".join(rows)
        + "</table><p></p><table><tr><th>pair</th><th>difference</th><th>Welch p</th><th>Holm p</th></tr>"
        + "".join(pairs)
        + "</table>"
    )


def _pareto_figure(report: TableReport) -> Any:
    import plotly.graph_objects as go

    on = [i for i, flag in enumerate(report.pareto) if flag]
    on.sort(key=lambda i: report.latency_ms[i])
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=list(report.latency_ms),
            y=list(report.means),
            mode="markers",
            text=list(report.archs),
            name="architectures",
            marker={"color": "#9aa"},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[report.latency_ms[i] for i in on],
            y=[report.means[i] for i in on],
            mode="lines+markers",
            text=[report.archs[i] for i in on],
            name="Pareto front",
            line={"shape": "hv"},
        )
    )
    fig.update_layout(xaxis_title="latency (ms, median over runs)", yaxis_title="mean final val mIoU")
    return fig


def _f(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _p(value: float) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return "<0.001" if value < 0.001 else f"{value:.3f}"
