"""Results in SQL: SQLite by default (``sqlite:///nasfcn.db``), any SQLAlchemy URL otherwise.

Writers (the search driver's callback, the only writer) use the idempotent functions of
this module inside ``Store.session_scope``; readers get pandas frames.
"""

from nasfcn.store._benchmarks import architecture_genotype, benchmark_runs_frame, seed_spread_frame
from nasfcn.store._engine import SchemaOutdatedError, Store, StoreError, head_revision, open_store
from nasfcn.store._queries import (
    LEADERBOARD_COLUMNS,
    OBJECTIVES,
    NoSuchSearchError,
    best_per_architecture,
    counts,
    epochs_frame,
    leaderboard_frame,
    pareto_frame,
    pareto_front,
    search_id,
    searches_frame,
)
from nasfcn.store._schema import FINISHED_STATUSES, SEARCH_STATUSES, TRIAL_STATUSES
from nasfcn.store._url import DEFAULT_URL, ENV_VAR, DatabaseURLError, mask_text, mask_url, resolve_url
from nasfcn.store._writes import (
    SearchExistsError,
    create_search,
    find_reusable,
    finish_trial,
    finished_trials,
    get_search,
    interrupt_unfinished,
    next_trial_number,
    recipe_key,
    record_epoch,
    reusable_result,
    set_checkpoint,
    set_search_status,
    software_versions,
    upsert_architecture,
    upsert_trial,
)

__all__ = [
    "DEFAULT_URL",
    "ENV_VAR",
    "FINISHED_STATUSES",
    "LEADERBOARD_COLUMNS",
    "OBJECTIVES",
    "SEARCH_STATUSES",
    "TRIAL_STATUSES",
    "DatabaseURLError",
    "NoSuchSearchError",
    "SchemaOutdatedError",
    "SearchExistsError",
    "Store",
    "StoreError",
    "architecture_genotype",
    "benchmark_runs_frame",
    "best_per_architecture",
    "counts",
    "create_search",
    "epochs_frame",
    "find_reusable",
    "finish_trial",
    "finished_trials",
    "get_search",
    "head_revision",
    "interrupt_unfinished",
    "leaderboard_frame",
    "mask_text",
    "mask_url",
    "next_trial_number",
    "open_store",
    "pareto_frame",
    "pareto_front",
    "recipe_key",
    "record_epoch",
    "resolve_url",
    "reusable_result",
    "search_id",
    "searches_frame",
    "seed_spread_frame",
    "set_checkpoint",
    "set_search_status",
    "software_versions",
    "upsert_architecture",
    "upsert_trial",
]
