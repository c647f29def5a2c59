"""The leaderboard's plots: pure functions from the store's frames to Plotly figures.

Plotly renders a subset of HTML in every text it draws (titles, labels, hover text, table
cells), so each text that comes from the database goes through ``esc`` first: Plotly then
shows ``&lt;b&gt;`` as the literal characters ``<b>`` and never builds markup from it. Every
function accepts empty frames and then returns a figure that says so instead of failing.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from leaderboard.table import compact, status_color, status_label
from nasfcn.store import RESULT_STATUSES, pareto_front

#: Cost axes of the Pareto plot: frame column -> axis title, log axis.
COSTS = {
    "latency_ms": ("latency (ms)", False),
    "params": ("parameters", True),
    "flops": ("FLOPs", True),
}
#: Architecture knobs that matter: frame column -> title.
KNOBS = {
    "upsample": "upsampling",
    "skip": "skip path",
    "attention": "attention",
    "kernels": "kernel sizes",
    "stages": "depth (stages)",
    "width": "width",
}
#: Marker per status, so a status reads without colour too.
SYMBOLS = {
    "completed": "circle",
    "stopped_early": "triangle-down",
    "cached": "diamond",
    "running": "circle-open",
    "interrupted": "x-open",
    "pending": "circle-open",
}
FRONT_COLOR = "#e6ab02"
REFERENCE_COLOR = "#444444"
#: Benchmark plots: tied with the best, and the rest.
TIED_COLOR, OTHER_COLOR = "#1b9e77", "#9aa5b1"
#: Colours for candidates compared side by side.
PALETTE = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#a6761d")
TEMPLATE = "plotly_white"


def esc(text: object) -> str:
    """Stored text made inert for Plotly's HTML-like text rendering."""
    return html.escape(str(text), quote=False)


def candidate_label(number: int, arch_id: str) -> str:
    """How a trial is named on plots: its number in the search and its architecture."""
    return f"#{int(number)} {esc(arch_id)}"


def message_figure(title: str, message: str) -> go.Figure:
    """An empty plot that explains itself (no trials, no results, nothing chosen)."""
    figure = go.Figure()
    figure.add_annotation(text=esc(message), showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    figure.update_layout(
        title=title,
        template=TEMPLATE,
        height=260,
        xaxis={"visible": False},
        yaxis={"visible": False},
        meta={"empty": True},
    )
    return figure


def reference_levels(trials: pd.DataFrame) -> dict[str, float]:
    """Each reference design's best val mIoU over its full runs, best first: the bar to beat."""
    if "reference" not in trials:
        return {}
    done = trials[
        trials["reference"].map(lambda r: isinstance(r, str) and bool(r))
        & trials["status"].isin(RESULT_STATUSES)  # a reference line stands for a full run
        & trials["best_miou"].notna()
    ]
    best = done.groupby("reference")["best_miou"].max().sort_values(ascending=False, kind="stable")
    return {str(name): float(value) for name, value in best.items()}


def add_reference_lines(figure: go.Figure, levels: Mapping[str, float]) -> go.Figure:
    """A dashed horizontal line per reference at its val mIoU, named at the plot's edge.

    Labels alternate left and right so that two references with close results stay readable.
    """
    for i, (name, value) in enumerate(levels.items()):
        figure.add_hline(
            y=value,
            line={"dash": "dash", "color": REFERENCE_COLOR, "width": 1},
            name=f"reference {esc(name)}",
            annotation_text=f"{esc(name)} (ref) {value:.3f}",
            annotation_position="top left" if i % 2 == 0 else "top right",
            annotation_font={"color": REFERENCE_COLOR, "size": 11},
        )
    return figure


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


def _is_reference(frame: pd.DataFrame) -> pd.Series:
    if "reference" not in frame:
        return pd.Series(False, index=frame.index)
    return frame["reference"].map(lambda r: isinstance(r, str) and bool(r)).astype(bool)


def pareto_figure(
    trials: pd.DataFrame,
    costs: Sequence[str] = tuple(COSTS),
    references: Mapping[str, float] | None = None,
) -> go.Figure:
    """Val mIoU against a cost; the non-dominated trials highlighted and joined by a line.

    With several ``costs`` a menu switches between them (the static page); the live app passes one.
    Reference designs get their own labelled marker, and a dashed line at ``references``
    (name -> val mIoU; default ``reference_levels(trials)``), so a filter cannot hide the bar.
    """
    title = "Pareto front: accuracy against cost"
    scored = trials[trials["best_miou"].notna()]
    if scored.empty:
        return message_figure(title, "No trial has a validation mIoU yet.")
    figure = go.Figure()
    spans = []  # (first, last) trace index of each cost, for the menu's visibility lists
    for k, cost in enumerate(costs):
        frame = scored[scored[cost].notna()].sort_values([cost, "best_miou"], ascending=[True, False])
        front = pareto_front(frame, ("miou", cost)) if not frame.empty else pd.Series(dtype=bool)
        is_reference = _is_reference(frame)
        first = len(figure.data)
        for status, group in frame[~front & ~is_reference].groupby("status", sort=False):
            figure.add_trace(
                go.Scatter(
                    x=group[cost],
                    y=group["best_miou"],
                    mode="markers",
                    name=esc(status_label(str(status))),
                    legendgroup=str(status),
                    marker={
                        "symbol": SYMBOLS.get(str(status), "circle"),
                        "color": status_color(str(status)),
                        "size": 9,
                        "opacity": 0.8,
                    },
                    customdata=group["trial_id"].to_numpy(),
                    hovertext=_hover(group),
                    hoverinfo="text",
                    visible=k == 0,
                    meta={"cost": cost, "role": "trials", "status": str(status)},
                )
            )
        on_front = frame[front]
        figure.add_trace(
            go.Scatter(
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
                visible=k == 0,
                meta={"cost": cost, "role": "front"},
            )
        )
        named = frame[is_reference]
        if not named.empty:  # on the front too, a reference keeps its star inside this square
            figure.add_trace(
                go.Scatter(
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
                    visible=k == 0,
                    meta={"cost": cost, "role": "references"},
                )
            )
        spans.append((first, len(figure.data)))
    count = len(figure.data)
    buttons = [
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
    first_title, first_log = COSTS[costs[0]]
    missing = len(trials) - len(scored)
    figure.update_layout(
        title=title + (f" ({missing} trials without a result not shown)" if missing else ""),
        template=TEMPLATE,
        xaxis={"title": {"text": first_title}, "type": "log" if first_log else "linear"},
        yaxis={"title": {"text": "best val mIoU"}},
        legend={"orientation": "h", "y": -0.2},
        height=480,
    )
    if len(costs) > 1:
        figure.update_layout(
            updatemenus=[{"buttons": buttons, "direction": "down", "x": 1.0, "xanchor": "right", "y": 1.15}]
        )
    return add_reference_lines(figure, reference_levels(trials) if references is None else references)


def learning_curves(epochs: pd.DataFrame, references: Mapping[str, float] | None = None) -> go.Figure:
    """Val mIoU per epoch per trial; trials ASHA stopped are dotted and end in a cross.

    ``references`` (name -> val mIoU, see ``reference_levels``) are drawn as dashed lines.
    """
    title = "Learning curves: val mIoU per epoch"
    curves = epochs[epochs["val_miou"].notna()]
    if curves.empty:
        return message_figure(title, "No epoch has been evaluated yet.")
    figure = go.Figure()
    for (_, number, arch_id, status), group in curves.groupby(
        ["trial_id", "number", "arch_id", "status"], sort=True
    ):
        group = group.sort_values("epoch")
        stopped = status == "stopped_early"
        symbols = ["circle"] * len(group)
        if stopped:
            symbols[-1] = "x"
        name = candidate_label(number, arch_id)
        if stopped:
            name += f" (stopped at epoch {int(group['epoch'].iloc[-1])})"
        figure.add_trace(
            go.Scatter(
                x=group["epoch"],
                y=group["val_miou"],
                mode="lines+markers",
                name=name,
                line={
                    "color": status_color(str(status)),
                    "dash": "dot" if stopped else "solid",
                    "width": 1.5,
                },
                marker={"symbol": symbols, "size": [6] * (len(group) - 1) + [12 if stopped else 6]},
                customdata=group["trial_id"].to_numpy(),
                text=[name] * len(group),
                hovertemplate="%{text}<br>epoch %{x}: val mIoU %{y:.3f}<extra></extra>",
                meta={"status": str(status), "stopped": bool(stopped)},
            )
        )
    figure.update_layout(
        title=title,
        template=TEMPLATE,
        xaxis={"title": {"text": "epoch"}, "dtick": 1},
        yaxis={"title": {"text": "val mIoU"}},
        height=440,
    )
    return add_reference_lines(figure, references or {})


def best_so_far(trials: pd.DataFrame) -> go.Figure:
    """The best val mIoU found so far, against trials run and against wall time."""
    title = "Best so far"
    scored = trials[trials["best_miou"].notna()]
    if scored.empty:
        return message_figure(title, "No trial has a validation mIoU yet.")
    figure = make_subplots(rows=1, cols=2, subplot_titles=("against trials run", "against wall time"))
    by_number = trials.sort_values("number")
    runs = np.arange(1, len(by_number) + 1)
    figure.add_trace(
        go.Scatter(
            x=runs,
            y=by_number["best_miou"],
            mode="markers",
            name="trial result",
            marker={"color": "#999999", "size": 6},
            customdata=by_number["trial_id"].to_numpy(),
            meta={"role": "trials"},
        ),
        row=1,
        col=1,
    )
    figure.add_trace(
        go.Scatter(
            x=runs,
            y=by_number["best_miou"].cummax().ffill(),
            mode="lines",
            name="best so far",
            line={"shape": "hv", "color": FRONT_COLOR, "width": 3},
            meta={"role": "best_by_count"},
        ),
        row=1,
        col=1,
    )
    if "finished_at" in trials and trials["finished_at"].notna().any():
        timed = trials[trials["finished_at"].notna()].sort_values("finished_at")
        start = (
            trials["started_at"].min() if trials["started_at"].notna().any() else timed["finished_at"].min()
        )
        minutes = (timed["finished_at"] - start).dt.total_seconds() / 60.0
        figure.add_trace(
            go.Scatter(
                x=minutes,
                y=timed["best_miou"].cummax().ffill(),
                mode="lines+markers",
                name="best so far (time)",
                line={"shape": "hv", "color": "#1b9e77", "width": 3},
                meta={"role": "best_by_time"},
            ),
            row=1,
            col=2,
        )
    figure.update_xaxes(title_text="trials run", row=1, col=1)
    figure.update_xaxes(title_text="minutes since the first trial started", row=1, col=2)
    figure.update_yaxes(title_text="val mIoU", row=1, col=1)
    figure.update_layout(title=title, template=TEMPLATE, height=400, showlegend=False)
    return figure


def _categories(values: pd.Series) -> list:
    """A knob's values in natural order: numbers numerically, text alphabetically."""
    unique = values.dropna().unique().tolist()
    return sorted(
        unique, key=lambda v: (0, v, "") if isinstance(v, (int, float, np.number)) else (1, 0, str(v))
    )


def parallel_knobs(trials: pd.DataFrame) -> go.Figure:
    """One line per trial across its knobs, coloured by val mIoU: which combinations win."""
    title = "Architecture knobs, coloured by val mIoU"
    scored = trials[trials["best_miou"].notna()]
    if scored.empty:
        return message_figure(title, "No trial has a validation mIoU yet.")
    dimensions = []
    for knob, label in KNOBS.items():
        categories = _categories(scored[knob])
        codes = scored[knob].map({v: i for i, v in enumerate(categories)})
        dimensions.append(
            {
                "label": label,
                "values": codes.to_numpy(dtype=float),
                "tickvals": list(range(len(categories))),
                "ticktext": [esc(v) for v in categories],
                "range": [-0.25, max(len(categories) - 1, 0) + 0.25],
            }
        )
    dimensions.append({"label": "val mIoU", "values": scored["best_miou"].to_numpy(dtype=float)})
    figure = go.Figure(
        go.Parcoords(
            line={
                "color": scored["best_miou"].to_numpy(dtype=float),
                "colorscale": "Viridis",
                "showscale": True,
                "colorbar": {"title": {"text": "mIoU"}},
            },
            dimensions=dimensions,
        )
    )
    figure.update_layout(title=title, template=TEMPLATE, height=440, margin={"l": 60, "r": 60, "t": 90})
    return figure


def knob_effects(trials: pd.DataFrame, knobs: Sequence[str] = tuple(KNOBS)) -> go.Figure:
    """Val mIoU distribution per value of each knob, values ordered by median (best first)."""
    title = "Per-knob effect on val mIoU"
    scored = trials[trials["best_miou"].notna()]
    if scored.empty:
        return message_figure(title, "No trial has a validation mIoU yet.")
    cols = 3
    rows = (len(knobs) + cols - 1) // cols
    figure = make_subplots(rows=rows, cols=cols, subplot_titles=[KNOBS.get(k, k) for k in knobs])
    for i, knob in enumerate(knobs):
        text = scored[knob].astype(str)
        order = scored.groupby(text)["best_miou"].median().sort_values(ascending=False).index.tolist()
        figure.add_trace(
            go.Box(
                x=[esc(v) for v in text],
                y=scored["best_miou"],
                boxpoints="all",
                jitter=0.4,
                pointpos=0,
                name=KNOBS.get(knob, knob),
                marker={"color": PALETTE[i % len(PALETTE)], "size": 5},
                customdata=scored["trial_id"].to_numpy(),
                meta={"knob": knob, "order": order},
            ),
            row=i // cols + 1,
            col=i % cols + 1,
        )
        figure.update_xaxes(
            type="category",
            categoryorder="array",
            categoryarray=[esc(v) for v in order],
            row=i // cols + 1,
            col=i % cols + 1,
        )
    figure.update_yaxes(title_text="val mIoU", col=1)
    figure.update_layout(title=title, template=TEMPLATE, height=320 * rows, showlegend=False)
    return figure


def _top(trials: pd.DataFrame, top: int) -> pd.DataFrame:
    return trials[trials["best_miou"].notna()].sort_values("rank", kind="stable").head(top)


def per_class_heatmap(
    per_class: pd.DataFrame, trials: pd.DataFrame, class_names: Sequence[str], top: int = 10
) -> go.Figure:
    """Per-class val IoU (at each trial's best epoch) of the top candidates, best at the top."""
    title = f"Per-class IoU of the top {top} candidates"
    best = _top(trials, top)
    best = best[best["trial_id"].isin(per_class["trial_id"])]
    if best.empty:
        return message_figure(title, "No per-class results yet.")
    width = int(per_class["class_index"].max()) + 1
    matrix = per_class.pivot_table(index="trial_id", columns="class_index", values="iou", dropna=False)
    matrix = matrix.reindex(index=best["trial_id"], columns=range(width))
    labels = [f"{candidate_label(r.number, r.arch_id)} (rank {int(r.rank)})" for r in best.itertuples()]
    names = [esc(class_names[i]) if i < len(class_names) else f"class {i}" for i in range(width)]
    z = matrix.to_numpy(dtype=float)
    text = [["–" if np.isnan(v) else f"{v:.2f}" for v in row] for row in z]
    figure = go.Figure(
        go.Heatmap(
            z=z,
            x=names,
            y=labels,
            text=text,
            texttemplate="%{text}",
            zmin=0.0,
            zmax=1.0,
            colorscale="Viridis",
            colorbar={"title": {"text": "IoU"}},
            customdata=np.repeat(best["trial_id"].to_numpy()[:, None], width, axis=1),
            hovertemplate="%{y}<br>%{x}: IoU %{z:.3f}<extra></extra>",
        )
    )
    figure.update_layout(
        title=title,
        template=TEMPLATE,
        yaxis={"autorange": "reversed", "type": "category"},
        xaxis={"type": "category"},
        height=max(300, 60 + 36 * len(best)),
    )
    return figure


def _chosen(trials: pd.DataFrame, trial_ids: Sequence[int]) -> pd.DataFrame:
    """The chosen trials, in the order they were chosen."""
    indexed = trials.set_index("trial_id", drop=False)
    return indexed.loc[[t for t in trial_ids if t in indexed.index]].reset_index(drop=True)


def _flatten(value: object, prefix: str = "") -> dict[str, str]:
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for key in sorted(value):
            out.update(_flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list):
        return {prefix: "/".join(map(str, value))}
    return {prefix: str(value)}


def genotype_diff(trials: pd.DataFrame, trial_ids: Sequence[int]) -> go.Figure:
    """Knob by knob, side by side; the rows where the candidates differ are highlighted."""
    title = "Genotypes side by side (differences highlighted)"
    chosen = _chosen(trials, trial_ids)
    if chosen.empty:
        return message_figure(title, "Choose candidates to compare.")
    flat = [_flatten(json.loads(text)) for text in chosen["genotype_json"]]
    knobs = sorted(set().union(*flat))
    rows = [[esc(k) for k in knobs]]
    for genotype in flat:
        rows.append([esc(genotype.get(k, "—")) for k in knobs])
    differs = [len({g.get(k, "—") for g in flat}) > 1 for k in knobs]
    fill = ["#fde9a9" if d else "white" for d in differs]
    header = ["knob", *(candidate_label(r.number, r.arch_id) for r in chosen.itertuples())]
    figure = go.Figure(
        go.Table(
            header={"values": header, "fill_color": "#eeeeee", "align": "left", "font": {"size": 13}},
            cells={"values": rows, "fill_color": [fill] * len(rows), "align": "left", "height": 24},
            meta={"differs": [k for k, d in zip(knobs, differs, strict=True) if d]},
        )
    )
    figure.update_layout(title=title, template=TEMPLATE, height=160 + 30 * len(knobs))
    return figure


def per_class_bars(
    per_class: pd.DataFrame, trials: pd.DataFrame, class_names: Sequence[str], trial_ids: Sequence[int]
) -> go.Figure:
    """Per-class val IoU of chosen trials as grouped bars (one colour per candidate)."""
    title = "Per-class IoU (best epoch)"
    chosen = _chosen(trials, trial_ids)
    chosen = chosen[chosen["trial_id"].isin(per_class["trial_id"])]
    if chosen.empty:
        return message_figure(title, "No per-class results for these trials.")
    width = int(per_class[per_class["trial_id"].isin(chosen["trial_id"])]["class_index"].max()) + 1
    names = [esc(class_names[i]) if i < len(class_names) else f"class {i}" for i in range(width)]
    figure = go.Figure()
    for i, row in enumerate(chosen.itertuples()):
        ious = per_class[per_class["trial_id"] == row.trial_id].set_index("class_index")["iou"]
        figure.add_trace(
            go.Bar(
                x=names,
                y=ious.reindex(range(width)).to_numpy(dtype=float),
                name=candidate_label(row.number, row.arch_id),
                marker={"color": PALETTE[i % len(PALETTE)]},
                meta={"trial_id": int(row.trial_id)},
            )
        )
    figure.update_layout(
        title=title,
        template=TEMPLATE,
        barmode="group",
        yaxis={"title": {"text": "IoU"}, "range": [0, 1]},
        xaxis={"type": "category"},
        height=380,
    )
    return figure


def cost_bars(trials: pd.DataFrame, trial_ids: Sequence[int]) -> go.Figure:
    """Accuracy and the three costs of chosen trials, one panel each."""
    title = "Accuracy and cost"
    chosen = _chosen(trials, trial_ids)
    if chosen.empty:
        return message_figure(title, "Choose candidates to compare.")
    panels = {"best_miou": "val mIoU", "params": "parameters", "flops": "FLOPs", "latency_ms": "latency (ms)"}
    figure = make_subplots(rows=1, cols=len(panels), subplot_titles=list(panels.values()))
    labels = [candidate_label(r.number, r.arch_id) for r in chosen.itertuples()]
    colors = [PALETTE[i % len(PALETTE)] for i in range(len(chosen))]
    for col, column in enumerate(panels, start=1):
        values = chosen[column].to_numpy(dtype=float)
        text = [
            "–" if np.isnan(v) else (compact(v) if column in ("params", "flops") else f"{v:.3g}")
            for v in values
        ]
        figure.add_trace(
            go.Bar(x=labels, y=values, text=text, marker={"color": colors}, meta={"column": column}),
            row=1,
            col=col,
        )
    figure.update_xaxes(showticklabels=False)
    figure.update_layout(title=title, template=TEMPLATE, height=340, showlegend=False)
    return figure


def cross_search_figure(across: pd.DataFrame, dataset: str, top: int = 25) -> go.Figure:
    """Best result per architecture over every search on the dataset, coloured by search."""
    title = f"Best per architecture across all searches on {esc(dataset)}"
    if across.empty:
        return message_figure(title, "No architecture has a validation mIoU on this dataset yet.")
    best = across.sort_values(["best_miou", "arch_id"], ascending=[False, True]).head(top)
    order = [esc(a) for a in best["arch_id"]]
    figure = go.Figure()
    for i, (search, group) in enumerate(best.groupby("search", sort=False)):
        figure.add_trace(
            go.Bar(
                x=group["best_miou"],
                y=[esc(a) for a in group["arch_id"]],
                orientation="h",
                name=esc(search),
                marker={"color": PALETTE[i % len(PALETTE)]},
                text=[
                    f"{m:.3f} ({n} run{'s' if n != 1 else ''})"
                    for m, n in zip(group["best_miou"], group["runs"], strict=True)
                ],
                customdata=group["trial_id"].to_numpy(),
                hovertext=[
                    f"{esc(a)} in {esc(search)}: val mIoU {m:.3f}"
                    for a, m in zip(group["arch_id"], group["best_miou"], strict=True)
                ],
                hoverinfo="text",
            )
        )
    figure.update_layout(
        title=title,
        template=TEMPLATE,
        xaxis={"title": {"text": "best val mIoU"}, "range": [0, 1]},
        yaxis={"type": "category", "categoryorder": "array", "categoryarray": order, "autorange": "reversed"},
        legend={"title": {"text": "search"}},
        height=max(320, 80 + 26 * len(best)),
    )
    return figure


def bench_label(label: object, reference: object) -> str:
    """How a benchmark names an architecture on plots: its label, '(ref)' for a reference design."""
    suffix = " (ref)" if isinstance(reference, str) and reference else ""
    return f"{esc(label)}{suffix}"


def benchmark_figure(results: pd.DataFrame, dataset: str) -> go.Figure:
    """Mean val mIoU with its 95% CI per architecture on one dataset, best at the top.

    The architectures tied with the best (tie group 1) are coloured apart from the rest, so
    a reader sees at once which differences the runs can and cannot tell apart.
    """
    title = f"{esc(dataset)}: mean val mIoU with 95% CI"
    on_data = results[(results["dataset"] == dataset) & results["miou_mean"].notna()]
    if on_data.empty:
        return message_figure(title, f"No architecture has a full run with a result on {dataset} yet.")
    on_data = on_data.sort_values(["miou_mean", "label"], ascending=[False, True], kind="stable")
    labels = [bench_label(r.label, r.reference) for r in on_data.itertuples()]
    figure = go.Figure()
    for tied, name, color in (
        (True, "tied with the best (group 1, =)", TIED_COLOR),
        (False, "worse than the best", OTHER_COLOR),
    ):
        part = on_data[on_data["tied_with_best"].astype(bool) == tied]
        if part.empty:
            continue
        half = ((part["miou_ci_high"] - part["miou_ci_low"]) / 2).fillna(0.0)
        figure.add_trace(
            go.Scatter(
                x=part["miou_mean"],
                y=[bench_label(r.label, r.reference) for r in part.itertuples()],
                mode="markers",
                name=name,
                marker={"color": color, "size": 11, "symbol": "diamond" if tied else "circle"},
                error_x={"type": "data", "array": half.to_numpy(dtype=float), "color": color, "thickness": 2},
                hovertext=[_bench_hover(r) for r in part.to_dict("records")],
                hoverinfo="text",
                meta={"role": "tied" if tied else "other", "labels": [esc(v) for v in part["label"]]},
            )
        )
    figure.update_layout(
        title=title,
        template=TEMPLATE,
        xaxis={"title": {"text": "val mIoU (mean over seeds, 95% CI)"}},
        yaxis={
            "type": "category",
            "categoryorder": "array",
            "categoryarray": labels,
            "autorange": "reversed",
        },
        legend={"orientation": "h", "y": -0.25},
        height=max(280, 140 + 32 * len(on_data)),
    )
    return figure


def _number(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or np.isnan(value) else f"{value:.{digits}f}"


def _bench_hover(row: Mapping[str, Any]) -> str:
    """Everything the statistics say about one architecture on one dataset."""
    p = row["p_vs_best"]
    versus = "" if np.isnan(p) else f" · p vs best {'&lt;0.001' if p < 0.001 else f'{p:.3f}'} (Holm)"
    failed = f", {int(row['failed'])} failed" if row["failed"] else ""
    ci = (
        f"[{_number(row['miou_ci_low'])}, {_number(row['miou_ci_high'])}]"
        if not np.isnan(row["miou_ci_low"])
        else "needs two runs"
    )
    return (
        f"{bench_label(row['label'], row['reference'])} · {esc(row['arch_id'])}<br>"
        f"val mIoU {_number(row['miou_mean'])} ± {_number(row['miou_std'])} (sd) · 95% CI {ci}<br>"
        f"{int(row['runs'])} runs{failed} · tie group {_number(row['group'], 0)}{versus}"
    )
