"""The strategy arena: whole searches replayed against a table, hundreds of times, then measured.

``replay(table, ArenaSearch(strategy, scheduler, trials, concurrency), seed)`` runs the very
searcher and scheduler ``nasfcn search`` builds, on a simulated clock, with each epoch looked
up in the table instead of trained (no Ray actors, no training). ``replays`` repeats it;
``compare`` turns the replays into regret curves, epochs to target, regret at equal epochs,
the winner's curse and paired tests against random + FIFO (all plain frames).
"""

from nasfcn.arena._measure import (
    BASELINE,
    ArenaSummary,
    bootstrap_median,
    compare,
    curves,
    epochs_to_target,
    mean_ranks,
    per_repeat,
    regret_at,
    wilcoxon,
)
from nasfcn.arena._replay import ArenaError, ArenaSearch, ArenaTable, ReplayResult, replay, replays

__all__ = [
    "BASELINE",
    "ArenaError",
    "ArenaSearch",
    "ArenaSummary",
    "ArenaTable",
    "ReplayResult",
    "bootstrap_median",
    "compare",
    "curves",
    "epochs_to_target",
    "mean_ranks",
    "per_repeat",
    "regret_at",
    "replay",
    "replays",
    "wilcoxon",
]
