"""Across searches and benchmarks: the best per architecture, and means with their CIs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from leaderboard.figures._base import (
    OTHER_COLOR,
    PALETTE,
    TEMPLATE,
    TIED_COLOR,
    esc,
    message_figure,
)


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
