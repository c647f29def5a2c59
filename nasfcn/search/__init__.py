"""Architecture search on Ray Tune: Optuna proposes, ASHA stops early, SQL remembers.

``run_search(SearchConfig(...)) -> SearchSummary`` is the Python API behind ``nasfcn search``.
"""

from nasfcn.search._config import (
    REPORTED,
    SCHEDULERS,
    STRATEGIES,
    SearchConfig,
    SearchConfigError,
    SearchStoppedError,
    SearchSummary,
)
from nasfcn.search._driver import run_search
from nasfcn.search._searcher import SAMPLERS

__all__ = [
    "REPORTED",
    "SAMPLERS",
    "SCHEDULERS",
    "STRATEGIES",
    "SearchConfig",
    "SearchConfigError",
    "SearchStoppedError",
    "SearchSummary",
    "run_search",
]
