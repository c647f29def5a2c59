"""Zero-cost proxies: score an untrained segmentation network on one seeded minibatch.

``compute(model_or_genotype, batch, names, seed)`` runs the proxies registered in
``PROXIES`` (their names: ``nasfcn.catalogue.PROXIES``) and returns each one's value, its
seconds and, for a proxy that raised, its error. ``minibatch(bundle, size, seed)`` draws
the batch from a dataset. ``score`` (on ``table_candidates`` or ``search_candidates``) and
``correlate`` judge the proxies against trained architectures (``nasfcn proxies evaluate``).
A new proxy is a function ``(model, batch, generator) -> float`` under
``@PROXIES.register(name)``, its name catalogued first; its docstring names the paper and
its adaptation to per-pixel outputs.
"""

from nasfcn.proxies import _activation, _cost, _data_free, _gradient  # noqa: F401  (register the proxies)
from nasfcn.proxies._activation import jacov_score, naswot_kernel
from nasfcn.proxies._core import (
    PROXIES,
    Batch,
    ProxyError,
    ProxyFunction,
    ProxyResult,
    batch_input,
    compute,
    minibatch,
    pixel_loss,
    weight_layers,
)
from nasfcn.proxies._evaluate import (
    BATCH_SIZE,
    Candidates,
    Held,
    HeldLookup,
    Scores,
    candidate_data,
    sample_archs,
    score,
    search_candidates,
    table_candidates,
    trial_batch,
)
from nasfcn.proxies._rank import Figures, correlate, kendall, spearman, spearman_interval, top_precision
from nasfcn.proxies._report import as_json, render_html

__all__ = [
    "BATCH_SIZE",
    "PROXIES",
    "Batch",
    "Candidates",
    "Figures",
    "Held",
    "HeldLookup",
    "ProxyError",
    "ProxyFunction",
    "ProxyResult",
    "Scores",
    "as_json",
    "batch_input",
    "candidate_data",
    "compute",
    "correlate",
    "jacov_score",
    "kendall",
    "minibatch",
    "naswot_kernel",
    "pixel_loss",
    "render_html",
    "sample_archs",
    "score",
    "search_candidates",
    "spearman",
    "spearman_interval",
    "table_candidates",
    "top_precision",
    "trial_batch",
    "weight_layers",
]
