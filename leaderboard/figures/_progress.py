"""How a search progresses: learning curves per trial and the best result so far."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from leaderboard.figures._base import (
    FRONT_COLOR,
    GL_POINTS,
    PLOT_POINTS,
    TEMPLATE,
    add_reference_lines,
    candidate_label,
    message_figure,
    scatter,
)
from leaderboard.table import status_color


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


#: The learning-curves overview of a big search: the best ``CURVES_TOP`` in full, and a seeded
#: sample of ``CURVES_SAMPLE`` of the others as thin grey lines (thousands of lines are a blur).
CURVES_TOP, CURVES_SAMPLE, CURVES_SEED = 20, 400, 0


def learning_curves_overview(
    epochs: pd.DataFrame,
    ranked: Sequence[int],
    references: Mapping[str, float] | None = None,
    top: int = CURVES_TOP,
    sample: int = CURVES_SAMPLE,
    population: int | None = None,
) -> go.Figure:
    """``learning_curves`` of every trial while there are at most ``top + sample``; beyond, the
    ``top`` first of ``ranked`` (trial ids, best first) in full, a seeded sample of ``sample``
    other trials in one WebGL trace, and a note in the title saying so.

    ``population``: how many trials have curves when ``epochs`` holds only those
    ``curve_sample`` chose (the live app reads no other epochs)."""
    curves = epochs[epochs["val_miou"].notna()]
    ids = curves["trial_id"].unique()
    total = max(len(ids), population or 0)
    if total <= top + sample:
        return learning_curves(epochs, references)
    best, chosen = curve_sample(ids, ranked, top, sample)
    figure = learning_curves(curves[curves["trial_id"].isin(best)], references)
    figure.add_trace(_sample_trace(curves[curves["trial_id"].isin(chosen)]))
    figure.data = (figure.data[-1], *figure.data[:-1])  # drawn underneath the best
    figure.update_layout(
        title=(
            f"Learning curves: val mIoU per epoch (the best {len(best)} of {total:,} trials; grey: "
            f"a random sample of {len(chosen)} of the other {total - len(best):,}, seed {CURVES_SEED})"
        ),
        title_font_size=14,
    )
    return figure


def curve_sample(
    ids: Sequence[int] | np.ndarray, ranked: Sequence[int], top: int = CURVES_TOP, sample: int = CURVES_SAMPLE
) -> tuple[list[int], np.ndarray]:
    """The curves ``learning_curves_overview`` draws of trials ``ids``: the ``top`` first of
    ``ranked`` in full, and a seeded sample of ``sample`` others.

    The sample is the ``sample`` trials whose seeded hash of their id is least (a bottom-k
    sample: uniform, like a draw without replacement), so a new trial changes it by at most one
    curve, and a live board that refreshes reads the epochs of at most one more trial."""
    drawn = set(np.asarray(ids).tolist())
    best = [int(t) for t in ranked if t in drawn][:top]
    rest = np.setdiff1d(np.asarray(ids), best).astype(np.int64)
    order = np.argsort(_id_hash(rest, CURVES_SEED), kind="stable")[:sample]
    return best, np.sort(rest[order])


def _id_hash(ids: np.ndarray, seed: int) -> np.ndarray:
    """A seeded 64-bit mix of each id (SplitMix64's finaliser): the same id, the same number."""
    with np.errstate(over="ignore"):
        z = ids.astype(np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _sample_trace(curves: pd.DataFrame) -> go.Scattergl:
    """Many curves as one line trace, each trial's points ended by a gap."""
    ordered = curves.sort_values(["trial_id", "epoch"])
    ids = ordered["trial_id"].to_numpy()
    last = np.r_[ids[1:] != ids[:-1], True] if len(ids) else np.zeros(0, dtype=bool)
    # each point moves right by the gaps before it: one ``None`` after each trial's last point
    where = np.arange(len(ids)) + np.r_[0, np.cumsum(last)[:-1]].astype(int)[: len(ids)]
    xs = np.full(len(ids) + int(last.sum()), None, dtype=object)
    ys = xs.copy()
    xs[where] = ordered["epoch"].tolist()
    ys[where] = ordered["val_miou"].round(4).tolist()
    return go.Scattergl(
        x=xs.tolist(),
        y=ys.tolist(),
        mode="lines",
        name="sampled trials",
        line={"color": "rgba(120,120,120,0.35)", "width": 1},
        hoverinfo="skip",
        connectgaps=False,
        meta={"role": "sample"},
    )


def _steps(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The points of a step line (``hv``) that change it: where ``y`` moves, and the last one.
    The line drawn is the same; at 10^5 trials it is a few dozen points, not 10^5 (below
    ``GL_POINTS`` points every one is kept, for the hover)."""
    if len(y) < GL_POINTS:
        return np.asarray(x), y
    keep = np.r_[True, ~((y[1:] == y[:-1]) | (np.isnan(y[1:]) & np.isnan(y[:-1])))]
    keep[-1] = True
    return np.asarray(x)[keep], y[keep]


def bucket_best(values: np.ndarray, buckets: int = PLOT_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """(runs, best): ``values`` in run order cut into at most ``buckets`` consecutive buckets, each
    bucket's best (NaN when none has a result) at its last run (1-based). Its running max is the
    exact best-so-far at every bucket's end; up to ``buckets`` values each is its own bucket."""
    count = len(values)
    runs = np.arange(1, count + 1)
    if count <= buckets:
        return runs, values
    ends = (np.arange(1, buckets + 1) * count) // buckets  # the last run of each bucket
    starts = np.r_[0, ends[:-1]]
    filled = np.where(np.isnan(values), -np.inf, values)
    best = np.maximum.reduceat(filled, starts)
    return ends, np.where(np.isneginf(best), np.nan, best)


def best_so_far(trials: pd.DataFrame) -> go.Figure:
    """The best val mIoU found so far, against trials run and against wall time.

    Up to ``PLOT_POINTS`` trials every result is a point; past it, each point is the best of
    a bucket of consecutive trials (at most ``PLOT_POINTS`` buckets, the title says so), and
    the line steps only where the best moves: the figure does not grow with the search."""
    title = "Best so far"
    scored = trials[trials["best_miou"].notna()]
    if scored.empty:
        return message_figure(title, "No trial has a validation mIoU yet.")
    figure = make_subplots(rows=1, cols=2, subplot_titles=("against trials run", "against wall time"))
    by_number = trials.sort_values("number")
    runs, results = bucket_best(by_number["best_miou"].to_numpy(dtype=float))
    bucketed = len(runs) < len(by_number)
    if bucketed:
        per = -(-len(by_number) // len(runs))
        title += f" (each grey point: the best of up to {per:,} consecutive trials of {len(by_number):,})"
    figure.add_trace(
        scatter(
            len(runs),
            x=runs,
            y=results,
            mode="markers",
            name="best of a bucket of trials" if bucketed else "trial result",
            marker={"color": "#999999", "size": 6 if len(runs) < GL_POINTS else 4},
            customdata=None if bucketed else by_number["trial_id"].to_numpy(),
            meta={"role": "trials", "bucketed": bucketed},
        ),
        row=1,
        col=1,
    )
    steps_x, steps_y = _steps(runs, pd.Series(results).cummax().ffill().to_numpy(dtype=float))
    figure.add_trace(
        scatter(
            len(runs),
            x=steps_x,
            y=steps_y,
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
        best = timed["best_miou"].cummax().ffill().to_numpy(dtype=float)
        at, best = _steps(minutes.to_numpy(dtype=float), best)
        figure.add_trace(
            scatter(
                len(minutes),
                x=at,
                y=best,
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
