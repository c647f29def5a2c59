"""Architecture search on Ray Tune: Optuna proposes, ASHA stops early, SQL remembers.

``run_search(SearchConfig(...)) -> SearchSummary`` is the Python API behind ``nasfcn search``.
``Execution`` (where and how a run executes), ``RunLifecycle`` (the steps every run takes)
and ``PlanSearch`` (a fixed list of runs) are what benchmarks and tables build on; a new
strategy is one ``@optuna_strategy`` (or ``@register_strategy``) registration.
"""

from nasfcn.search._config import (
    DEFAULT_SEARCH_PROXIES,
    FINAL_SHARE,
    REPORTED,
    SCHEDULERS,
    SEARCH_RESUME,
    SearchConfig,
    SearchConfigError,
    SearchStoppedError,
    SearchSummary,
    name_problem,
    scale_range_problems,
)
from nasfcn.search._driver import run_search
from nasfcn.search._execution import EXECUTION, Execution, execution_options, flat_config, with_execution
from nasfcn.search._lifecycle import Registered, Registration, RunLifecycle, Trials, shippable
from nasfcn.search._resume import (
    UNRECORDED_BEFORE,
    ResumeRule,
    check_explicit,
    conflict_message,
    given_fields,
    merge_stored,
    show,
)
from nasfcn.search._scheduler import make_scheduler
from nasfcn.search._searcher import PlannedRun, PlanSearch, RunLookup
from nasfcn.search._strategies import (
    SEARCHERS,
    SearcherInputs,
    optuna_strategy,
    register_strategy,
    unregister_strategy,
)
from nasfcn.search._surrogate import KnobEncoder, Surrogate
from nasfcn.search._trainable import TrialSettings

__all__ = [
    "DEFAULT_SEARCH_PROXIES",
    "EXECUTION",
    "FINAL_SHARE",
    "REPORTED",
    "SCHEDULERS",
    "SEARCHERS",
    "SEARCH_RESUME",
    "UNRECORDED_BEFORE",
    "Execution",
    "KnobEncoder",
    "PlanSearch",
    "PlannedRun",
    "Registered",
    "Registration",
    "ResumeRule",
    "RunLifecycle",
    "RunLookup",
    "SearchConfig",
    "SearchConfigError",
    "SearchStoppedError",
    "SearchSummary",
    "SearcherInputs",
    "Surrogate",
    "TrialSettings",
    "Trials",
    "check_explicit",
    "conflict_message",
    "execution_options",
    "flat_config",
    "given_fields",
    "make_scheduler",
    "merge_stored",
    "name_problem",
    "optuna_strategy",
    "register_strategy",
    "run_search",
    "scale_range_problems",
    "shippable",
    "show",
    "unregister_strategy",
    "with_execution",
]
