"""Benchmarks: architectures x datasets x seeds through the search's runner, with statistics.

``run_benchmark(BenchmarkConfig(...)) -> BenchmarkSummary`` is the Python API behind
``nasfcn benchmark``; ``write_report`` behind ``nasfcn benchmark report``;
``tabulate(TableSource(...), config)`` behind ``nasfcn tabulate`` (a benchmark of every
architecture of a space, stored as kind ``table``).
"""

from nasfcn.benchmark._archs import TABLE_LIMIT, BenchArch, resolve_archs, sample_genotypes, space_refusal
from nasfcn.benchmark._config import BenchmarkConfig, BenchmarkError, BenchmarkSummary
from nasfcn.benchmark._report import write_report
from nasfcn.benchmark._runner import run_benchmark
from nasfcn.benchmark._tabulate import TableSource, tabulate
from nasfcn.results import RESULT_COLUMNS, aggregate_ranks, benchmark_results, plan_labels

__all__ = [
    "RESULT_COLUMNS",
    "TABLE_LIMIT",
    "BenchArch",
    "BenchmarkConfig",
    "BenchmarkError",
    "BenchmarkSummary",
    "TableSource",
    "aggregate_ranks",
    "benchmark_results",
    "plan_labels",
    "resolve_archs",
    "run_benchmark",
    "sample_genotypes",
    "space_refusal",
    "tabulate",
    "write_report",
]
