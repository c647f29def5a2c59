"""The leaderboard's plots: pure functions from the store's frames to Plotly figures.

Plotly renders a subset of HTML in every text it draws (titles, labels, hover text, table
cells), so each text that comes from the database goes through ``esc`` first: Plotly then
shows ``&lt;b&gt;`` as the literal characters ``<b>`` and never builds markup from it. Every
function accepts empty frames and then returns a figure that says so instead of failing.

One module per family of figures: ``_pareto``, ``_progress`` (learning curves, best so far),
``_knobs``, ``_compare`` (candidates side by side), ``_across`` (searches and benchmarks);
``_base`` holds what they share.
"""

from leaderboard.figures._across import (
    bench_label,
    benchmark_figure,
    cross_search_figure,
)
from leaderboard.figures._base import (
    COSTS,
    FRONT_COLOR,
    GL_POINTS,
    KNOBS,
    OTHER_COLOR,
    PALETTE,
    PLOT_POINTS,
    REFERENCE_COLOR,
    SAMPLE_SEED,
    SYMBOLS,
    TEMPLATE,
    TIED_COLOR,
    add_reference_lines,
    candidate_label,
    esc,
    message_figure,
    reference_levels,
    scatter,
)
from leaderboard.figures._compare import (
    cost_bars,
    genotype_diff,
    per_class_bars,
    per_class_heatmap,
)
from leaderboard.figures._knobs import (
    knob_effects,
    parallel_knobs,
)
from leaderboard.figures._pareto import (
    pareto_figure,
)
from leaderboard.figures._progress import (
    best_so_far,
    curve_sample,
    learning_curves,
    learning_curves_overview,
)

__all__ = [
    "COSTS",
    "FRONT_COLOR",
    "GL_POINTS",
    "KNOBS",
    "OTHER_COLOR",
    "PALETTE",
    "PLOT_POINTS",
    "REFERENCE_COLOR",
    "SAMPLE_SEED",
    "SYMBOLS",
    "TEMPLATE",
    "TIED_COLOR",
    "add_reference_lines",
    "bench_label",
    "benchmark_figure",
    "best_so_far",
    "candidate_label",
    "cost_bars",
    "cross_search_figure",
    "curve_sample",
    "esc",
    "genotype_diff",
    "knob_effects",
    "learning_curves",
    "learning_curves_overview",
    "message_figure",
    "parallel_knobs",
    "pareto_figure",
    "per_class_bars",
    "per_class_heatmap",
    "reference_levels",
    "scatter",
]
