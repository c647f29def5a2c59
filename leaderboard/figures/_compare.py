"""Candidates side by side: per-class IoU of the best, genotypes, per-class and cost bars."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from leaderboard.figures._base import (
    PALETTE,
    TEMPLATE,
    candidate_label,
    esc,
    message_figure,
)
from leaderboard.table import compact


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
