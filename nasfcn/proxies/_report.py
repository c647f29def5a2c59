"""What ``nasfcn proxies evaluate`` writes: the JSON figures and one HTML file of scatters."""

from __future__ import annotations

import math
from html import escape
from typing import Any

import numpy as np

from nasfcn.proxies._evaluate import Scores
from nasfcn.proxies._rank import Figures

QUALITY = "mean final val mIoU over seeds"
_CSS = "body{font-family:sans-serif;margin:2em;max-width:1200px} .muted{color:#666}"


def as_json(scores: Scores, figures: list[Figures]) -> dict[str, Any]:
    """proxy -> spearman, its 95% CI, kendall, top-10% precision, seconds per architecture, n."""
    return {
        "source": scores.source,
        "quality": QUALITY,
        "archs": len(scores.archs),
        "batch": {"images": scores.batch_size, "image_size": list(scores.image_size), "seed": scores.seed},
        "seconds_per_arch": float(np.mean(scores.arch_seconds)) if len(scores.arch_seconds) else None,
        "data_seconds": scores.data_seconds,
        "proxies": {
            row.name: {**row.as_dict(), "errors": len(scores.errors.get(row.name, {}))} for row in figures
        },
    }


def _title(row: Figures) -> str:
    def f(value: float) -> str:
        return "n/a" if math.isnan(value) else f"{value:.2f}"

    return f"{row.name}: rho {f(row.spearman)} [{f(row.spearman_low)}, {f(row.spearman_high)}]"


def render_html(scores: Scores, figures: list[Figures]) -> str:
    """One scatter per proxy (value vs quality), Plotly's JavaScript inlined once; text escaped."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = [row for row in figures if row.name in scores.values]
    columns = 3
    lines = math.ceil(len(rows) / columns) or 1
    fig = make_subplots(
        rows=lines, cols=columns, subplot_titles=[_title(row) for row in rows], vertical_spacing=0.3 / lines
    )
    for i, row in enumerate(rows):
        x = scores.values[row.name]
        keep = np.isfinite(x) & np.isfinite(scores.quality)
        fig.add_trace(
            go.Scatter(
                x=x[keep],
                y=scores.quality[keep],
                mode="markers",
                text=[a for a, k in zip(scores.archs, keep, strict=True) if k],
                hovertemplate="%{text}<br>%{x:.4g}<br>mIoU %{y:.3f}<extra></extra>",
                name=row.name,
                showlegend=False,
            ),
            row=i // columns + 1,
            col=i % columns + 1,
        )
        positive = x[keep]
        if len(positive) and positive.min() > 0 and positive.max() > 1000 * positive.min():
            fig.update_xaxes(type="log", row=i // columns + 1, col=i % columns + 1)
    fig.update_yaxes(title_text="mIoU")
    fig.update_layout(height=320 * lines, margin={"t": 60})
    head = (
        f"{len(scores.archs)} architectures of {scores.source}; quality: {QUALITY}; minibatch of "
        f"{scores.batch_size} images at {scores.image_size[0]} x {scores.image_size[1]}, seed {scores.seed}"
    )
    return "".join(
        [
            "<!doctype html><html><head><meta charset='utf-8'><title>Zero-cost proxies</title>",
            f"<style>{_CSS}</style></head><body><h1>Zero-cost proxies</h1>",
            f"<p class='muted'>{escape(head)}</p>",
            fig.to_html(full_html=False, include_plotlyjs=True, config={"displaylogo": False}),
            "</body></html>",
        ]
    )
