"""What every figure shares: the knobs and costs plotted, colours, escaping, the empty figure
and the reference lines."""

from __future__ import annotations

import html
from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from nasfcn.store import RESULT_STATUSES

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
#: From this many points a scatter trace is drawn with WebGL (``scattergl``): SVG slows down
#: with every marker, WebGL does not; below it the plots stay SVG, as they always were.
GL_POINTS = 1000


#: The most trials an overview plot draws one mark each for (Pareto points, parallel-coordinate
#: lines, best-so-far points): a plot shows no more; past it the plot draws the trials that
#: matter (the front, the best) and a seeded sample of the rest, and says so in its title.
PLOT_POINTS = 2000
#: The seed of those samples: the same search draws the same sample on every refresh.
SAMPLE_SEED = 0


def sample_rows(frame: pd.DataFrame, size: int, seed: int = SAMPLE_SEED) -> pd.DataFrame:
    """At most ``size`` rows of ``frame``, a seeded random choice kept in ``frame``'s order."""
    if len(frame) <= size:
        return frame
    picked = np.random.default_rng(seed).choice(len(frame), size=size, replace=False)
    return frame.iloc[np.sort(picked)]


def sample_note(shown: int, total: int, what: str) -> str:
    """The title's note when a plot draws a sample: what it is of, and the seed."""
    return f" ({what}: a random sample of {shown:,} of {total:,}, seed {SAMPLE_SEED})"


def scatter(points: int, **properties: object) -> go.Scatter | go.Scattergl:
    """A scatter trace of ``points`` points: WebGL from ``GL_POINTS`` on, SVG below."""
    return go.Scattergl(**properties) if points >= GL_POINTS else go.Scatter(**properties)


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
