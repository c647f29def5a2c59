"""The Pareto front: val mIoU against a cost, a menu switching between costs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from leaderboard.figures._base import (
    COSTS,
    FRONT_COLOR,
    GL_POINTS,
    PLOT_POINTS,
    REFERENCE_COLOR,
    SYMBOLS,
    TEMPLATE,
    add_reference_lines,
    candidate_label,
    esc,
    message_figure,
    reference_levels,
    sample_note,
    sample_rows,
    scatter,
)
from leaderboard.table import compact, status_color, status_label
from nasfcn.store import pareto_front


def _hover(frame: pd.DataFrame) -> list[str]:
    references = frame["reference"] if "reference" in frame else pd.Series(None, index=frame.index)
    return [
        f"{candidate_label(r.number, r.arch_id)} · {esc(status_label(r.status))}"
        f"{f' · reference {esc(ref)}' if isinstance(ref, str) and ref else ''}<br>"
        f"val mIoU {r.best_miou:.3f} · params {compact(r.params)} · FLOPs {compact(r.flops)}"
        f" · latency {r.latency_ms:.2f} ms<br>{esc(r.skip)}, {esc(r.upsample)}, {esc(r.attention)}, "
        f"kernels {esc(r.kernels)}"
        for r, ref in zip(frame.itertuples(index=False), references, strict=True)
    ]


#: What the traces read of a trial, besides its costs.
_DRAWN = (
    "trial_id",
    "number",
    "arch_id",
    "status",
    "best_miou",
    "params",
    "flops",
    "latency_ms",
    "reference",
    "skip",
    "upsample",
    "attention",
    "kernels",
)


def _is_reference(frame: pd.DataFrame) -> pd.Series:
    if "reference" not in frame:
        return pd.Series(False, index=frame.index)
    return pd.Series([isinstance(r, str) and bool(r) for r in frame["reference"].tolist()], index=frame.index)


def pareto_figure(
    trials: pd.DataFrame,
    costs: Sequence[str] = tuple(COSTS),
    references: Mapping[str, float] | None = None,
) -> go.Figure:
    """Val mIoU against a cost; the non-dominated trials highlighted and joined by a line.

    With several ``costs`` a menu switches between them (the static page); the live app passes one.
    The front and the references are drawn whole; of the other trials at most ``PLOT_POINTS``, a
    seeded sample named in the title, so the figure does not grow with the search.
    Reference designs get their own labelled marker, and a dashed line at ``references``
    (name -> val mIoU; default ``reference_levels(trials)``), so a filter cannot hide the bar.
    """
    title = "Pareto front: accuracy against cost"
    drawn = [c for c in (*_DRAWN, *costs) if c in trials]  # a board's frame has ~50 columns
    scored = trials.loc[trials["best_miou"].notna(), list(dict.fromkeys(drawn))]
    if scored.empty:
        return message_figure(title, "No trial has a validation mIoU yet.")
    figure = go.Figure()
    spans = []  # (first, last) trace index of each cost, for the menu's visibility lists
    sampled = []  # (drawn, of) the trials off the front, per cost
    for k, cost in enumerate(costs):
        first = len(figure.data)
        sampled.append(_add_cost_traces(figure, scored, cost, visible=k == 0))
        spans.append((first, len(figure.data)))
    first_title, first_log = COSTS[costs[0]]
    missing = len(trials) - len(scored)
    if missing:
        title += f" ({missing} trials without a result not shown)"
    if sampled[0][0] < sampled[0][1]:
        title += sample_note(*sampled[0], "trials off the front")
    figure.update_layout(
        title=title,
        template=TEMPLATE,
        xaxis={"title": {"text": first_title}, "type": "log" if first_log else "linear"},
        yaxis={"title": {"text": "best val mIoU"}},
        legend={"orientation": "h", "y": -0.2},
        height=480,
    )
    if len(costs) > 1:
        buttons = _cost_buttons(costs, spans, len(figure.data))
        figure.update_layout(
            updatemenus=[{"buttons": buttons, "direction": "down", "x": 1.0, "xanchor": "right", "y": 1.15}]
        )
    return add_reference_lines(figure, reference_levels(trials) if references is None else references)


def _add_cost_traces(figure: go.Figure, scored: pd.DataFrame, cost: str, visible: bool) -> tuple[int, int]:
    """The trials against one cost: one trace per status, the front, the reference designs.
    Returns how many trials off the front it drew, and of how many."""
    frame = scored[scored[cost].notna()].sort_values([cost, "best_miou"], ascending=[True, False])
    front = pareto_front(frame, ("miou", cost)) if not frame.empty else pd.Series(dtype=bool)
    is_reference = _is_reference(frame)
    others = frame[~front & ~is_reference]
    drawn = sample_rows(others, PLOT_POINTS)
    for status, group in drawn.groupby("status", sort=False):
        figure.add_trace(_status_trace(group, cost, str(status), visible))
    figure.add_trace(_front_trace(frame[front], cost, visible))
    named = frame[is_reference]
    if not named.empty:  # on the front too, a reference keeps its star inside this square
        figure.add_trace(_reference_trace(named, cost, visible))
    return len(drawn), len(others)


def _status_trace(group: pd.DataFrame, cost: str, status: str, visible: bool) -> go.Scatter | go.Scattergl:
    """One status's trials; from ``GL_POINTS`` on drawn with WebGL, each hover naming the trial and
    its two numbers only (a click opens the rest), so the figure stays small."""
    many = len(group) >= GL_POINTS
    if not many:
        hover: dict[str, object] = {"hovertext": _hover(group), "hoverinfo": "text"}
    else:
        hover = {
            "text": np.array(
                [candidate_label(n, a) for n, a in zip(group["number"], group["arch_id"], strict=True)],
                dtype=object,
            ),
            "hovertemplate": f"%{{text}}<br>val mIoU %{{y:.3f}} · {COSTS[cost][0]} %{{x:.3s}}",
        }
    return scatter(
        len(group),
        x=group[cost],
        y=group["best_miou"],
        mode="markers",
        name=esc(status_label(status)),
        legendgroup=status,
        marker={
            "symbol": SYMBOLS.get(status, "circle"),
            "color": status_color(status),
            "size": 6 if many else 9,
            "opacity": 0.8,
        },
        customdata=group["trial_id"].to_numpy(),
        visible=visible,
        meta={"cost": cost, "role": "trials", "status": status},
        **hover,
    )


def _front_trace(on_front: pd.DataFrame, cost: str, visible: bool) -> go.Scatter:
    return go.Scatter(
        x=on_front[cost],
        y=on_front["best_miou"],
        mode="lines+markers",
        name=f"Pareto front ({len(on_front)})",
        line={"color": FRONT_COLOR, "width": 2, "shape": "hv"},
        marker={
            "symbol": "star",
            "size": 15,
            "color": FRONT_COLOR,
            "line": {"color": "black", "width": 1},
        },
        customdata=on_front["trial_id"].to_numpy(),
        hovertext=_hover(on_front),
        hoverinfo="text",
        visible=visible,
        meta={"cost": cost, "role": "front"},
    )


def _reference_trace(named: pd.DataFrame, cost: str, visible: bool) -> go.Scatter:
    return go.Scatter(
        x=named[cost],
        y=named["best_miou"],
        mode="markers+text",
        name="reference designs",
        text=[esc(r) for r in named["reference"]],
        textposition="top center",
        textfont={"color": REFERENCE_COLOR},
        marker={
            "symbol": "square-open",
            "size": 16,
            "color": REFERENCE_COLOR,
            "line": {"width": 2},
        },
        customdata=named["trial_id"].to_numpy(),
        hovertext=_hover(named),
        hoverinfo="text",
        visible=visible,
        meta={"cost": cost, "role": "references"},
    )


def _cost_buttons(costs: Sequence[str], spans: list[tuple[int, int]], count: int) -> list[dict[str, Any]]:
    """The menu entries: each shows its cost's traces and retitles (and rescales) the x axis."""
    return [
        {
            "label": COSTS[cost][0],
            "method": "update",
            "args": [
                {"visible": [first <= i < last for i in range(count)]},
                {"xaxis.title.text": COSTS[cost][0], "xaxis.type": "log" if COSTS[cost][1] else "linear"},
            ],
        }
        for cost, (first, last) in zip(costs, spans, strict=True)
    ]
