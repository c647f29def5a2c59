"""Which architecture knobs win: parallel coordinates and per-knob distributions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from leaderboard.figures._base import (
    GL_POINTS,
    KNOBS,
    PALETTE,
    PLOT_POINTS,
    SAMPLE_SEED,
    TEMPLATE,
    esc,
    message_figure,
    sample_rows,
)

#: Of a big search, the parallel coordinates draw the best ``PARCOORDS_TOP`` trials and a seeded
#: sample of the others, ``PLOT_POINTS`` lines in all.
PARCOORDS_TOP = 500


def _categories(values: pd.Series) -> list:
    """A knob's values in natural order: numbers numerically, text alphabetically."""
    unique = values.dropna().unique().tolist()
    return sorted(
        unique, key=lambda v: (0, v, "") if isinstance(v, (int, float, np.number)) else (1, 0, str(v))
    )


def parallel_knobs(trials: pd.DataFrame) -> go.Figure:
    """One line per trial across its knobs, coloured by val mIoU: which combinations win.

    Past ``PLOT_POINTS`` scored trials: the best ``PARCOORDS_TOP`` and a seeded sample of the
    others (the title says so); a parallel-coordinates plot of more lines is a solid band."""
    title = "Architecture knobs, coloured by val mIoU"
    every = trials[trials["best_miou"].notna()]
    if every.empty:
        return message_figure(title, "No trial has a validation mIoU yet.")
    scored = every
    if len(every) > PLOT_POINTS:
        ranked = every.sort_values("best_miou", ascending=False, kind="stable")
        rest = sample_rows(ranked.iloc[PARCOORDS_TOP:], PLOT_POINTS - PARCOORDS_TOP)
        scored = pd.concat([ranked.iloc[:PARCOORDS_TOP], rest])
        title += (
            f" (the best {PARCOORDS_TOP:,} trials, and a random sample of {len(rest):,} of the other "
            f"{len(every) - PARCOORDS_TOP:,}, seed {SAMPLE_SEED})"
        )
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
    scored = trials.loc[trials["best_miou"].notna(), ["trial_id", "best_miou", *knobs]]
    if scored.empty:
        return message_figure(title, "No trial has a validation mIoU yet.")
    cols = 3
    rows = (len(knobs) + cols - 1) // cols
    figure = make_subplots(rows=rows, cols=cols, subplot_titles=[KNOBS.get(k, k) for k in knobs])
    for i, knob in enumerate(knobs):
        text = scored[knob].astype(str)
        order = scored.groupby(text)["best_miou"].median().sort_values(ascending=False).index.tolist()
        box = go.Box(
            name=KNOBS.get(knob, knob),
            marker={"color": PALETTE[i % len(PALETTE)], "size": 5},
            meta={"knob": knob, "order": order},
        )
        if len(scored) < GL_POINTS:  # every trial a dot on its box
            box.update(
                x=[esc(v) for v in text],
                y=scored["best_miou"],
                boxpoints="all",
                jitter=0.4,
                pointpos=0,
                customdata=scored["trial_id"].to_numpy(),
            )
        else:  # 10^4 dots are a blur: the boxes' statistics, a few numbers per value
            box.update(_box_statistics(scored["best_miou"], text, order))
        figure.add_trace(box, row=i // cols + 1, col=i % cols + 1)
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


def _box_statistics(values: pd.Series, groups: pd.Series, order: Sequence[str]) -> dict[str, object]:
    """Plotly's precomputed box of each group (quartiles, and Tukey's fences at 1.5 IQR clipped
    to the data), in ``order``: the figure stays the same size whatever the number of trials."""
    # by integer codes: mapping 10^5 texts back to their group's fence was most of the figure
    codes, names = pd.factorize(groups, sort=False)
    by = values.groupby(codes)
    q1, median, q3 = by.quantile(0.25), by.median(), by.quantile(0.75)
    low = (q1 - 1.5 * (q3 - q1)).to_numpy()[codes]  # each value's group's fence
    high = (q3 + 1.5 * (q3 - q1)).to_numpy()[codes]
    inside = values.where((values.to_numpy() >= low) & (values.to_numpy() <= high))
    fences = inside.groupby(codes).agg(["min", "max"])
    index = pd.Index(names)
    q1, median, q3 = (s.set_axis(index[s.index]) for s in (q1, median, q3))
    fences = fences.set_axis(index[fences.index])
    return {
        "x": [esc(v) for v in order],
        "q1": q1.reindex(order).to_numpy(),
        "median": median.reindex(order).to_numpy(),
        "q3": q3.reindex(order).to_numpy(),
        "lowerfence": fences["min"].reindex(order).to_numpy(),
        "upperfence": fences["max"].reindex(order).to_numpy(),
        "boxpoints": False,
    }
