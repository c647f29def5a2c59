"""Benchmarks: architectures x datasets x seeds through the search's runner, with statistics.

``run_benchmark(BenchmarkConfig(...)) -> BenchmarkSummary`` is the Python API behind
``nasfcn benchmark``; ``write_report`` behind ``nasfcn benchmark report``.
"""

from nasfcn.benchmark._archs import BenchArch, resolve_archs
from nasfcn.benchmark._config import BenchmarkConfig, BenchmarkError, BenchmarkSummary
from nasfcn.benchmark._report import write_report
from nasfcn.benchmark._runner import run_benchmark
from nasfcn.results import RESULT_COLUMNS, aggregate_ranks, benchmark_results, plan_labels

__all__ = [
    "RESULT_COLUMNS",
    "BenchArch",
    "BenchmarkConfig",
    "BenchmarkError",
    "BenchmarkSummary",
    "aggregate_ranks",
    "benchmark_results",
    "plan_labels",
    "resolve_archs",
    "run_benchmark",
    "write_report",
]
