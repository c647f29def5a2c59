"""The figure functions on hand-made frames: which traces, which points highlighted, in which order."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from leaderboard import figures

T0 = pd.Timestamp("2026-01-01 12:00", tz="UTC")


def _genotype(skip: str, upsample: str, width: int) -> str:
    return json.dumps(
        {
            "attention": {"type": "none"},
            "encoder": {"kernel_size": [3, 3], "stages": 2, "width": width},
            "skip": skip,
            "upsample": upsample,
        }
    )


def trials_frame(rows: list[dict], **columns: list) -> pd.DataFrame:
    """A leaderboard frame, ranked: rows give trial_id, status, best_miou and costs; ``columns``
    (one value per row, in the order given) override the default knobs."""
    rows = [{**row, **{k: v[i] for k, v in columns.items()}} for i, row in enumerate(rows)]
    frame = pd.DataFrame(
        [
            {
                "number": row["trial_id"] - 1,
                "arch_id": f"arch{row['trial_id']:02d}",
                "best_pixel_accuracy": row.get("best_miou"),
                "epochs_trained": 2,
                "skip": "none",
                "upsample": "bilinear",
                "attention": "none",
                "kernels": "3/3",
                "stages": 2,
                "width": 4,
                "flops": 1e6 * row["trial_id"],
                "cached_from": None,
                "error": None,
                "started_at": T0 + pd.Timedelta(minutes=row["trial_id"] - 1),
                "finished_at": T0 + pd.Timedelta(minutes=row["trial_id"] + 1),
                **row,
            }
            for row in rows
        ]
    )
    frame["genotype_json"] = [
        _genotype(s, u, int(w))
        for s, u, w in zip(frame["skip"], frame["upsample"], frame["width"], strict=True)
    ]
    frame["best_miou"] = frame["best_miou"].astype(float)
    frame = frame.sort_values("best_miou", ascending=False, na_position="last").reset_index(drop=True)
    frame["rank"] = frame["best_miou"].rank(ascending=False, method="min")
    return frame


@pytest.fixture
def trials() -> pd.DataFrame:
    # Latency front: 1 (fast), 3, 5 (best); params front: 2 (smallest), 5; 4 dominated; 6 failed.
    ups, bil = "transposed", "bilinear"
    return trials_frame(
        [
            {"trial_id": 1, "status": "completed", "best_miou": 0.50, "latency_ms": 1.0, "params": 900},
            {"trial_id": 2, "status": "stopped_early", "best_miou": 0.40, "latency_ms": 3.0, "params": 100},
            {"trial_id": 3, "status": "completed", "best_miou": 0.60, "latency_ms": 2.0, "params": 800},
            {"trial_id": 4, "status": "cached", "best_miou": 0.55, "latency_ms": 2.5, "params": 850},
            {"trial_id": 5, "status": "completed", "best_miou": 0.70, "latency_ms": 4.0, "params": 700},
            {"trial_id": 6, "status": "failed", "best_miou": np.nan, "latency_ms": 0.5, "params": 50},
        ],
        skip=["fcn16s", "none", "unet_add", "none", "unet_add", "none"],
        upsample=[ups, bil, bil, ups, bil, bil],
        width=[4, 4, 6, 4, 6, 4],
    )


def _traces(figure: go.Figure, **meta) -> list:
    return [t for t in figure.data if all((t.meta or {}).get(k) == v for k, v in meta.items())]


def test_pareto_highlights_the_non_dominated_trials_in_cost_order(trials) -> None:
    figure = figures.pareto_figure(trials)
    (front,) = _traces(figure, cost="latency_ms", role="front")
    assert list(front.customdata) == [1, 3, 5]  # fastest to most accurate, joined by a line
    assert list(front.x) == [1.0, 2.0, 4.0]
    assert front.mode == "lines+markers"
    assert front.marker.symbol == "star"
    others = {int(i) for t in _traces(figure, cost="latency_ms", role="trials") for i in t.customdata}
    assert others == {2, 4}  # the failed trial has no mIoU: not drawn, but counted in the title
    assert "1 trials without a result" in figure.layout.title.text
    (params_front,) = _traces(figure, cost="params", role="front")
    assert list(params_front.customdata) == [2, 5]


def test_pareto_marks_status_and_switches_cost_with_a_menu(trials) -> None:
    figure = figures.pareto_figure(trials)
    (stopped,) = _traces(figure, cost="latency_ms", status="stopped_early")
    (cached,) = _traces(figure, cost="latency_ms", status="cached")
    assert stopped.marker.symbol == "triangle-down"
    assert cached.marker.symbol == "diamond"
    assert "stopped early" in stopped.name
    assert all(t.visible for t in _traces(figure, cost="latency_ms"))
    assert not any(t.visible for t in _traces(figure, cost="params"))
    buttons = figure.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == ["latency (ms)", "parameters", "FLOPs"]
    visible = buttons[1].args[0]["visible"]
    assert [t.meta["cost"] for t, v in zip(figure.data, visible, strict=True) if v] == ["params"] * 3
    assert buttons[1].args[1]["xaxis.type"] == "log"


def test_pareto_with_one_cost_has_no_menu(trials) -> None:
    figure = figures.pareto_figure(trials, costs=("flops",))
    assert not figure.layout.updatemenus
    assert figure.layout.xaxis.title.text == "FLOPs"


def _epochs() -> pd.DataFrame:
    rows = []
    for trial_id, status, mious in ((2, "completed", [0.2, 0.4, 0.5]), (1, "stopped_early", [0.1])):
        for epoch, miou in enumerate(mious, start=1):
            rows.append(
                {
                    "trial_id": trial_id,
                    "number": trial_id - 1,
                    "arch_id": f"arch{trial_id:02d}",
                    "status": status,
                    "epoch": epoch,
                    "val_miou": miou,
                }
            )
    rows.append({**rows[0], "trial_id": 3, "number": 2, "arch_id": "arch03", "val_miou": np.nan})
    return pd.DataFrame(rows)


def test_learning_curves_cut_short_trials_visibly() -> None:
    figure = figures.learning_curves(_epochs())
    assert [t.name.split(" ")[0] for t in figure.data] == ["#0", "#1"]  # trial order; no NaN-only trial
    stopped, completed = figure.data
    assert stopped.line.dash == "dot"
    assert stopped.marker.symbol[-1] == "x"
    assert "stopped at epoch 1" in stopped.name
    assert completed.line.dash == "solid"
    assert list(completed.y) == [0.2, 0.4, 0.5]


def _many_epochs(trials: int, epochs: int = 3) -> pd.DataFrame:
    ids = np.repeat(np.arange(1, trials + 1), epochs)
    return pd.DataFrame(
        {
            "trial_id": ids,
            "number": ids - 1,
            "arch_id": [f"a{i}" for i in ids],
            "status": "completed",
            "epoch": np.tile(np.arange(1, epochs + 1), trials),
            "val_miou": ids / (trials + 1) * np.tile(np.arange(1, epochs + 1), trials) / epochs,
        }
    )


def test_learning_curves_overview_of_a_small_search_is_every_curve() -> None:
    epochs = _many_epochs(30)
    overview = figures.learning_curves_overview(epochs, ranked=list(range(30, 0, -1)), top=5, sample=25)
    assert overview.to_plotly_json() == figures.learning_curves(epochs).to_plotly_json()


def test_learning_curves_overview_of_a_big_search_is_the_best_and_a_seeded_sample() -> None:
    epochs = _many_epochs(300)
    ranked = list(range(300, 0, -1))  # the trial ids, best first
    overview = figures.learning_curves_overview(epochs, ranked=ranked, top=5, sample=40)
    sample, *best = overview.data
    assert [t.name.split(" ")[0] for t in best] == [f"#{n}" for n in range(295, 300)]  # 296-300, in full
    assert sample.type == "scattergl"
    assert sample.meta["role"] == "sample"
    assert list(sample.x).count(None) == 40  # 40 curves, each ended by a gap
    assert "the best 5 of 300 trials" in overview.layout.title.text
    assert "random sample of 40 of the other 295, seed 0" in overview.layout.title.text
    again = figures.learning_curves_overview(epochs, ranked=ranked, top=5, sample=40)
    assert list(again.data[0].y) == list(sample.y)  # the same sample every time


def test_scatter_plots_of_many_points_use_webgl(trials) -> None:
    many = trials_frame(
        [
            {
                "trial_id": i,
                "status": "completed",
                "best_miou": (i % 97) / 97,
                "latency_ms": i % 13,
                "params": i,
            }
            for i in range(1, figures.GL_POINTS + 100)  # the front is a dozen of them
        ]
    )
    (big,) = _traces(figures.pareto_figure(many, costs=("latency_ms",)), role="trials")
    assert big.type == "scattergl"
    assert big.hovertext is None  # the hover names the trial, the plot gives its numbers
    assert len(big.text) == len(big.x) >= figures.GL_POINTS
    assert all(text.startswith("#") and " arch" in text for text in big.text)
    assert {t.type for t in _traces(figures.pareto_figure(trials), role="trials")} == {"scatter"}
    assert {t.type for t in figures.best_so_far(many).data} == {"scattergl"}
    assert {t.type for t in figures.best_so_far(trials).data} == {"scatter"}


def test_knob_effects_of_many_trials_are_box_statistics_not_points() -> None:
    rng = np.random.default_rng(0)
    n = figures.GL_POINTS + 500
    many = pd.DataFrame(
        {"trial_id": range(n), "best_miou": rng.random(n), "skip": rng.choice(["none", "<b>x</b>"], n)}
    )
    many.loc[0, "best_miou"] = 5.0  # far above the rest: outside the fence
    (box,) = figures.knob_effects(many, knobs=("skip",)).data
    assert box.y is None  # a few numbers per knob value, not one per trial
    order = box.meta["order"]
    assert list(box.x) == [figures.esc(v) for v in order]
    for k, value in enumerate(order):
        group = many[many["skip"] == value]["best_miou"]
        assert box.q1[k] == pytest.approx(group.quantile(0.25))
        assert box.median[k] == pytest.approx(group.median())
        assert box.q3[k] == pytest.approx(group.quantile(0.75))
        assert group.min() <= box.lowerfence[k] <= box.q1[k]
        assert box.q3[k] <= box.upperfence[k] < 5.0


def test_best_so_far_lines_keep_only_their_steps() -> None:
    n = figures.GL_POINTS * 3
    rng = np.random.default_rng(1)
    start = pd.Timestamp("2026-11-30", tz="UTC")
    many = pd.DataFrame(
        {
            "trial_id": range(n),
            "number": range(n),
            "best_miou": rng.random(n),
            "status": "completed",
            "started_at": [start + pd.Timedelta(minutes=i) for i in range(n)],
            "finished_at": [start + pd.Timedelta(minutes=i + 1) for i in range(n)],
        }
    )
    figure = figures.best_so_far(many)
    best = many["best_miou"].cummax()
    (by_time,) = _traces(figure, role="best_by_time")
    assert len(by_time.y) == best.nunique() + 1  # each new best once, and the last trial
    assert list(by_time.y[:-1]) == sorted(set(best))
    assert by_time.y[-1] == best.iloc[-1]
    # by count, past PLOT_POINTS trials: the exact best so far at the end of each bucket of trials
    (by_count,) = _traces(figure, role="best_by_count")
    assert by_count.x[-1] == n
    assert list(by_count.y) == [best.iloc[int(x) - 1] for x in by_count.x]
    (points,) = _traces(figure, role="trials")
    assert len(points.x) == figures.PLOT_POINTS
    assert points.meta["bucketed"] is True


def test_best_so_far_by_trial_count_and_wall_time(trials) -> None:
    figure = figures.best_so_far(trials)
    (by_count,) = _traces(figure, role="best_by_count")
    # numbers 0..5 score 0.5, 0.4, 0.6, 0.55, 0.7, NaN
    assert list(by_count.x) == [1, 2, 3, 4, 5, 6]
    assert list(by_count.y) == pytest.approx([0.5, 0.5, 0.6, 0.6, 0.7, 0.7])
    (by_time,) = _traces(figure, role="best_by_time")
    assert list(by_time.x) == pytest.approx([2.0, 3.0, 4.0, 5.0, 6.0, 7.0])  # minutes after the first start


def test_parallel_knobs_colours_scored_trials_by_miou(trials) -> None:
    (parcoords,) = figures.parallel_knobs(trials).data
    labels = [d.label for d in parcoords.dimensions]
    assert labels == [*figures.KNOBS.values(), "val mIoU"]
    skip = parcoords.dimensions[labels.index("skip path")]
    assert list(skip.ticktext) == ["fcn16s", "none", "unet_add"]
    assert len(parcoords.line.color) == 5  # the failed trial is left out
    assert max(parcoords.line.color) == pytest.approx(0.7)


def test_knob_effects_order_values_by_median_miou(trials) -> None:
    figure = figures.knob_effects(trials, knobs=("skip", "upsample"))
    skip, upsample = figure.data
    assert skip.meta["order"] == ["unet_add", "fcn16s", "none"]  # medians 0.65, 0.5, 0.475
    assert upsample.meta["order"] == ["bilinear", "transposed"]
    assert figure.layout.xaxis.categoryarray == ("unet_add", "fcn16s", "none")
    assert skip.boxpoints == "all"


def _per_class(trial_ids: list[int], classes: int = 3) -> pd.DataFrame:
    return pd.DataFrame(
        columns=["trial_id", "number", "arch_id", "class_index", "iou"],
        data=[
            {
                "trial_id": t,
                "number": t - 1,
                "arch_id": f"arch{t:02d}",
                "class_index": c,
                "iou": t / 10 + c / 100,
            }
            for t in trial_ids
            for c in range(classes)
        ],
    )


def test_per_class_heatmap_shows_the_top_candidates_best_first(trials) -> None:
    names = ("background", "<b>circle</b>", "square")
    (heatmap,) = figures.per_class_heatmap(_per_class([1, 2, 3, 4, 5]), trials, names, top=3).data
    assert [label.split(" ")[0] for label in heatmap.y] == ["#4", "#2", "#3"]  # trials 5, 3, 4 by rank
    assert list(heatmap.x) == ["background", "&lt;b&gt;circle&lt;/b&gt;", "square"]
    assert heatmap.z[0][1] == pytest.approx(0.51)


def test_genotype_diff_highlights_knobs_that_differ(trials) -> None:
    figure = figures.genotype_diff(trials, [5, 1])
    (table,) = figure.data
    assert table.meta["differs"] == ["encoder.width", "skip", "upsample"]
    knobs = list(table.cells.values[0])
    fills = table.cells.fill.color[0]
    assert fills[knobs.index("skip")] != "white"
    assert fills[knobs.index("attention.type")] == "white"
    assert [h.split(" ")[0] for h in table.header.values[1:]] == ["#4", "#0"]  # in the order chosen


def test_per_class_bars_and_cost_bars_one_entry_per_candidate(trials) -> None:
    bars = figures.per_class_bars(_per_class([1, 5]), trials, ("a", "b", "c"), [5, 1])
    assert [t.meta["trial_id"] for t in bars.data] == [5, 1]
    assert list(bars.data[0].x) == ["a", "b", "c"]
    cost = figures.cost_bars(trials, [5, 1])
    assert [t.meta["column"] for t in cost.data] == ["best_miou", "params", "flops", "latency_ms"]
    assert list(cost.data[3].y) == [4.0, 1.0]


def test_cross_search_bars_best_first_with_escaped_search_names() -> None:
    across = pd.DataFrame(
        {
            "arch_id": ["a1", "a2", "a3"],
            "trial_id": [1, 2, 3],
            "search": ["first", "<script>x</script>", "first"],
            "best_miou": [0.3, 0.8, 0.5],
            "runs": [1, 2, 1],
        }
    )
    figure = figures.cross_search_figure(across, "shapes")
    assert figure.layout.yaxis.categoryarray == ("a2", "a3", "a1")
    assert {t.name for t in figure.data} == {"first", "&lt;script&gt;x&lt;/script&gt;"}
    assert "(2 runs)" in next(t for t in figure.data if t.name.startswith("&lt;")).text[0]


def test_stored_text_is_escaped_for_plotly(trials) -> None:
    hostile = trials.assign(arch_id="<img src=x onerror=alert(1)>", skip="<b>x</b>")
    for figure in (figures.pareto_figure(hostile), figures.knob_effects(hostile)):
        text = figure.to_json()
        assert "<img" not in text
        assert "\\u003cimg" not in text  # plotly's JSON writes < as \u003c
        assert "&lt;img" in text or "&lt;b&gt;" in text


EMPTY_TRIALS = trials_frame(
    [{"trial_id": 1, "status": "failed", "best_miou": np.nan, "latency_ms": 1.0}]
).assign(params=1, flops=1)


@pytest.mark.parametrize(
    "draw",
    [
        lambda: figures.pareto_figure(EMPTY_TRIALS),
        lambda: figures.learning_curves(_epochs().iloc[0:0]),
        lambda: figures.best_so_far(EMPTY_TRIALS),
        lambda: figures.parallel_knobs(EMPTY_TRIALS),
        lambda: figures.knob_effects(EMPTY_TRIALS),
        lambda: figures.per_class_heatmap(_per_class([]), EMPTY_TRIALS, ()),
        lambda: figures.genotype_diff(EMPTY_TRIALS, []),
        lambda: figures.per_class_bars(_per_class([]), EMPTY_TRIALS, (), [1]),
        lambda: figures.cost_bars(EMPTY_TRIALS, []),
        lambda: figures.cross_search_figure(pd.DataFrame(columns=["arch_id", "best_miou"]), "shapes"),
    ],
)
def test_nothing_to_draw_gives_a_figure_that_says_so(draw) -> None:
    figure = draw()
    assert figure.layout.meta == {"empty": True}
    assert figure.layout.annotations[0].text


def test_reference_levels_are_each_references_best_full_run(trials) -> None:
    marked = trials.assign(reference=[None] * len(trials))
    by_id = marked.set_index("trial_id")
    by_id.loc[[1, 3, 4], "reference"] = "fcn8s"  # 0.50 completed, 0.60 completed, 0.55 cached
    by_id.loc[2, "reference"] = "unet"  # 0.40, stopped early: not a full run, no line
    by_id.loc[6, "reference"] = "segnet"  # failed
    levels = figures.reference_levels(by_id.reset_index())
    assert levels == {"fcn8s": pytest.approx(0.60)}


def _references(trials: pd.DataFrame) -> pd.DataFrame:
    """Trial 3 (0.60, on the latency front) is fcn8s, trial 4 (0.55, dominated) a unet named as markup."""
    names = {3: "fcn8s", 4: "<b>x</b>"}
    return trials.assign(reference=[names.get(int(t)) for t in trials["trial_id"]])


def _lines(figure: go.Figure) -> dict[str, float]:
    return {shape.name: shape.y0 for shape in figure.layout.shapes if shape.y0 == shape.y1}


def test_pareto_marks_references_and_draws_their_lines(trials) -> None:
    figure = figures.pareto_figure(_references(trials))
    (named,) = _traces(figure, cost="latency_ms", role="references")
    assert sorted(int(t) for t in named.customdata) == [3, 4]
    assert set(named.text) == {"fcn8s", "&lt;b&gt;x&lt;/b&gt;"}
    assert named.marker.symbol == "square-open"
    status_ids = {int(i) for t in _traces(figure, cost="latency_ms", role="trials") for i in t.customdata}
    assert status_ids == {2}  # the dominated reference is drawn once, as a reference
    (front,) = _traces(figure, cost="latency_ms", role="front")
    assert 3 in set(front.customdata)  # a reference on the front stays on it
    assert _lines(figure) == {"reference fcn8s": 0.60, "reference &lt;b&gt;x&lt;/b&gt;": 0.55}
    texts = [a.text for a in figure.layout.annotations]
    assert "fcn8s (ref) 0.600" in texts
    assert "&lt;b&gt;x&lt;/b&gt; (ref) 0.550" in texts
    assert all(shape.line.dash == "dash" and shape.xref == "x domain" for shape in figure.layout.shapes)
    text = figure.to_json()
    assert "<b>x" not in text
    assert "\\u003cb\\u003ex" not in text  # plotly's JSON writes < as \u003c; <br> is ours


def test_reference_lines_can_come_from_elsewhere(trials) -> None:
    """The live app passes every trial's levels, so filtering the references out keeps the lines."""
    levels = figures.reference_levels(_references(trials))
    without = trials[~trials["trial_id"].isin([3, 4])]
    assert set(_lines(figures.pareto_figure(without, references=levels))) == {
        "reference fcn8s",
        "reference &lt;b&gt;x&lt;/b&gt;",
    }
    assert not figures.pareto_figure(without).layout.shapes
    curves = figures.learning_curves(_epochs(), levels)
    assert _lines(curves) == {"reference fcn8s": 0.60, "reference &lt;b&gt;x&lt;/b&gt;": 0.55}
    assert not figures.learning_curves(_epochs()).layout.shapes


def bench_results(label: str = "mine") -> pd.DataFrame:
    """``benchmark_results`` of hand-made runs on shapes: ``label`` and unet tie, fcn8s is worse."""
    from nasfcn.benchmark import benchmark_results

    runs = [
        (arch, ref, seed, miou)
        for arch, ref, mious in (
            ("aaaa", None, [0.80, 0.82, 0.81]),
            ("bbbb", "unet", [0.79, 0.82, 0.80]),
            ("cccc", "fcn8s", [0.50, 0.52, 0.51]),
        )
        for seed, miou in enumerate(mious)
    ]
    frame = pd.DataFrame(
        [
            {
                "trial_id": i,
                "arch_id": arch,
                "reference": ref,
                "dataset": "shapes",
                "seed": seed,
                "status": "completed",
                "best_miou": miou,
                "best_pixel_accuracy": 0.9,
                "params": 1000,
                "flops": 2000,
                "latency_ms": 1.0,
            }
            for i, (arch, ref, seed, miou) in enumerate(runs)
        ]
    )
    return benchmark_results(frame, {"aaaa": label, "bbbb": "unet", "cccc": "fcn8s"})


def test_benchmark_figure_shows_ci_error_bars_best_first_with_ties_coloured() -> None:
    results = bench_results()
    figure = figures.benchmark_figure(results, "shapes")
    assert figure.layout.yaxis.categoryarray == ("mine", "unet (ref)", "fcn8s (ref)")
    (tied,) = _traces(figure, role="tied")
    (other,) = _traces(figure, role="other")
    assert list(tied.y) == ["mine", "unet (ref)"]
    assert list(other.y) == ["fcn8s (ref)"]
    assert tied.marker.color == figures.TIED_COLOR != other.marker.color
    assert "tied with the best" in tied.name
    indexed = results.set_index("label")
    for trace in (tied, other):
        for label, x, half in zip(trace.meta["labels"], trace.x, trace.error_x.array, strict=True):
            row = indexed.loc[label]
            assert x == pytest.approx(row["miou_mean"])
            assert half == pytest.approx((row["miou_ci_high"] - row["miou_ci_low"]) / 2)
            assert row["miou_ci_low"] + half == pytest.approx(row["miou_mean"])
    assert tied.error_x.array[0] > 0


def test_benchmark_figure_escapes_labels_and_explains_missing_results() -> None:
    figure = figures.benchmark_figure(bench_results("<b>x</b>"), "shapes")
    assert "&lt;b&gt;x&lt;/b&gt;" in figure.layout.yaxis.categoryarray
    text = figure.to_json()
    assert "<b>x" not in text
    assert "\\u003cb\\u003ex" not in text  # plotly's JSON writes < as \u003c; <br> is ours
    empty = figures.benchmark_figure(bench_results(), "digits")
    assert empty.layout.meta == {"empty": True}
    assert "digits" in empty.layout.annotations[0].text
    failed = bench_results().assign(miou_mean=np.nan)  # what only failed runs leave
    assert figures.benchmark_figure(failed, "shapes").layout.meta == {"empty": True}
