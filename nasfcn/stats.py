"""Statistics for repeated runs: is a difference between two architectures real?

Methods (the same in the report, the leaderboard and the CLI):

- **Spread**: mean and sample standard deviation (n - 1 in the denominator) over seeds.
- **95% confidence interval** of the mean: Student's t, ``mean +- t(0.975, n-1) * sd / sqrt(n)``.
  It assumes roughly normal run-to-run noise; with 3 seeds it is wide, on purpose.
  Undefined (NaN) for a single run.
- **Significance**: a two-sided *paired* t-test on the runs the two architectures share
  a seed with (same seed = same data order and augmentation, so the pairing removes that
  part of the noise). Identical runs give p = 1; fewer than two shared seeds give no
  p-value (NaN) and the two are treated as tied, since nothing shows them apart.
- **Ties**: p-values against the best architecture are adjusted with Holm's step-down
  method (the comparisons against the best are one family). An architecture is tied with
  the best when its adjusted p >= alpha (0.05). Tie groups are built greedily from the
  top: the best architecture opens group 1 and every architecture not significantly
  worse than it joins; the best of the rest opens group 2; and so on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as _scipy

ALPHA = 0.05
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Summary:
    """Mean, spread and confidence interval of one metric over repeated runs."""

    n: int
    mean: float
    std: float  # sample standard deviation; NaN for one run
    ci_low: float
    ci_high: float

    @property
    def half_width(self) -> float:
        return (self.ci_high - self.ci_low) / 2


def summarize(values: Sequence[float], confidence: float = CONFIDENCE) -> Summary:
    """Mean, sample SD and the t-based confidence interval of the mean (NaN where undefined)."""
    data = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    n = len(data)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(data.mean())
    if n == 1:
        return Summary(1, mean, math.nan, math.nan, math.nan)
    std = float(data.std(ddof=1))
    half = float(_scipy.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half)


@dataclass(frozen=True)
class PairedTest:
    """Paired t-test of ``a - b`` over the seeds both were run with."""

    n: int  # shared seeds
    mean_difference: float  # mean of a - b
    t: float
    p_value: float  # two-sided; 1.0 when every difference is zero, NaN with fewer than 2 pairs


def paired_test(a: Mapping[int, float], b: Mapping[int, float]) -> PairedTest:
    """Compare two architectures run with the same seeds (``{seed: metric}`` each)."""
    seeds = sorted(set(a) & set(b))
    differences = np.asarray([a[s] - b[s] for s in seeds], dtype=float)
    n = len(differences)
    if n == 0:
        return PairedTest(0, math.nan, math.nan, math.nan)
    mean = float(differences.mean())
    if n < 2:
        return PairedTest(n, mean, math.nan, math.nan)
    sd = float(differences.std(ddof=1))
    if sd == 0.0:
        return PairedTest(
            n, mean, 0.0 if mean == 0 else math.copysign(math.inf, mean), 1.0 if mean == 0 else 0.0
        )
    t = mean / (sd / math.sqrt(n))
    p = float(2 * _scipy.t.sf(abs(t), n - 1))
    return PairedTest(n, mean, t, p)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment (NaN stays NaN and is left out of the family)."""
    indexed = [(p, i) for i, p in enumerate(p_values) if not math.isnan(p)]
    indexed.sort()
    m = len(indexed)
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def tie_groups(
    runs: Mapping[str, Mapping[int, float]], alpha: float = ALPHA
) -> tuple[dict[str, int], dict[str, float]]:
    """Group architectures that the runs cannot tell apart (see the module docstring).

    Args:
        runs: architecture -> {seed: metric}; higher is better.

    Returns:
        (architecture -> group number starting at 1, architecture -> Holm-adjusted p-value
        against the best architecture; NaN for the best itself).
    """
    means = {name: float(np.mean(list(values.values()))) for name, values in runs.items() if values}
    order = sorted(means, key=lambda name: (-means[name], name))
    if not order:
        return {}, {}
    best = order[0]
    others = order[1:]
    raw = [paired_test(runs[best], runs[name]).p_value for name in others]
    adjusted = dict(zip(others, holm(raw), strict=True))
    adjusted[best] = math.nan
    groups: dict[str, int] = {}
    group = 0
    remaining = list(order)
    while remaining:
        group += 1
        leader = remaining.pop(0)
        groups[leader] = group
        family = list(remaining)
        p_values = holm([paired_test(runs[leader], runs[name]).p_value for name in family])
        tied = [name for name, p in zip(family, p_values, strict=True) if math.isnan(p) or p >= alpha]
        for name in tied:
            groups[name] = group
        remaining = [name for name in remaining if name not in groups]
    return groups, adjusted
