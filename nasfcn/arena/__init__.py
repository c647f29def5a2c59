"""The strategy arena: whole searches replayed against a table, hundreds of times, then measured.

``replay(table, ArenaSearch(strategy, scheduler, trials, concurrency), seed)`` runs the very
searcher and scheduler ``nasfcn search`` builds, on a simulated clock, with each epoch looked
up in the table instead of trained (no Ray actors, no training). ``replays`` repeats it;
``compare`` turns the replays into regret curves, epochs to target, regret at equal epochs,
the winner's curse and paired tests against a baseline pair (random + FIFO unless
``ArenaPlan.baseline`` names another; all plain frames). With
``ArenaSearch(confirm=ConfirmPolicy(K, S))`` a replay ends as a confirming search does
(``ReplayResult.confirmation``: the pick before and after, and the epochs it cost).
``run_arena`` is what ``nasfcn arena`` runs (a checked plan, its replays, ``compare``);
``arena_json``, ``render_arena_html`` and ``store_arena`` report it as JSON, HTML and SQL.
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
from nasfcn.arena._record import arena_config, arena_frames, store_arena
from nasfcn.arena._replay import (
    ArenaError,
    ArenaSearch,
    ArenaTable,
    Confirmation,
    Pick,
    ReplayResult,
    pair_name,
    replay,
    replays,
)
from nasfcn.arena._report import JSON_FORMAT, arena_json, render_arena_html, summary_cells
from nasfcn.arena._run import (
    DEFAULT_TARGET,
    ArenaPlan,
    ArenaRun,
    Target,
    check_names,
    check_plan,
    parse_pair,
    run_arena,
    target_of,
)

__all__ = [
    "BASELINE",
    "DEFAULT_TARGET",
    "JSON_FORMAT",
    "ArenaError",
    "ArenaPlan",
    "ArenaRun",
    "ArenaSearch",
    "ArenaSummary",
    "ArenaTable",
    "Confirmation",
    "Pick",
    "ReplayResult",
    "Target",
    "arena_config",
    "arena_frames",
    "arena_json",
    "bootstrap_median",
    "check_names",
    "check_plan",
    "compare",
    "curves",
    "epochs_to_target",
    "mean_ranks",
    "pair_name",
    "parse_pair",
    "per_repeat",
    "regret_at",
    "render_arena_html",
    "replay",
    "replays",
    "run_arena",
    "store_arena",
    "summary_cells",
    "target_of",
    "wilcoxon",
]
