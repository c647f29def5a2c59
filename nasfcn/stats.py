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

For tabular benchmarks (every architecture of a space x seeds x epochs):

- **Intra-class correlation** ICC(1) (one-way random effects, Shrout & Fleiss 1979) with
  architectures as groups and seeds as repeats: ``(MSB - MSW) / (MSB + (k - 1) MSW)``, the
  share of the variance that lies between architectures. Its confidence interval comes from
  ``F = MSB / MSW`` and the F distribution's quantiles (McGraw & Wong 1996, case 1). With
  unequal repeats ``k`` is ``(N - sum n_i^2 / N) / (a - 1)``.
- **Main effects** of a knob: architectures grouped by the knob's value; each group's mean
  with its t interval (``summarize``); every pair of values compared with Welch's t-test
  (unequal variances, unpaired: the groups hold different architectures), the pairs of one
  knob Holm-adjusted as one family.
- **Fidelity**: Spearman's rank correlation between the architectures' mean at epoch k and
  their mean at the final epoch, for every k: how far an early ranking can be trusted.
- **Pareto front**: the points no other point beats on every objective (NaN never counts).
- **Rank agreement** (proxies, two tables of one space): Spearman's rho with a 95%
  percentile-bootstrap interval (pairs resampled with replacement, seeded; a resample where
  either side is constant is left out) and Kendall's tau-b; NaN for fewer than 3 pairs.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType

import numpy as np
from numpy.typing import ArrayLike


def _scipy() -> ModuleType:
    """scipy.stats, loaded at the first test or correlation: importing nasfcn.stats (a search's
    trials do, through the proxies) does not pay for loading scipy."""
    return importlib.import_module("scipy.stats")


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
    half = float(_scipy().t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
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
    p = float(2 * _scipy().t.sf(abs(t), n - 1))
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


@dataclass(frozen=True)
class ICC:
    """One-way random-effects intra-class correlation, ICC(1), with its F-based interval."""

    icc: float
    ci_low: float
    ci_high: float
    groups: int  # architectures with at least one value
    repeats: float  # k: values per group (the adjusted mean size when unequal)
    ms_between: float
    ms_within: float
    f: float  # MSB / MSW
    p_value: float  # of F against "no difference between groups"


def icc1(groups: Sequence[Sequence[float]], confidence: float = CONFIDENCE) -> ICC:
    """ICC(1) of values grouped by architecture (NaN values are left out; see the module docstring).

    NaN everywhere when fewer than two groups, or no group with two values, remain.
    """
    data = [np.asarray([v for v in g if not math.isnan(v)], dtype=float) for g in groups]
    data = [g for g in data if len(g) > 0]
    a = len(data)
    total = int(sum(len(g) for g in data))
    if a < 2 or total <= a:
        return ICC(math.nan, math.nan, math.nan, a, math.nan, math.nan, math.nan, math.nan, math.nan)
    sizes = np.asarray([len(g) for g in data], dtype=float)
    grand = float(np.concatenate(data).mean())
    ss_between = float(sum(n * (g.mean() - grand) ** 2 for n, g in zip(sizes, data, strict=True)))
    ss_within = float(sum(((g - g.mean()) ** 2).sum() for g in data))
    df_between, df_within = a - 1, total - a
    ms_between, ms_within = ss_between / df_between, ss_within / df_within
    k = float((total - (sizes**2).sum() / total) / (a - 1))
    if ms_within == 0.0:
        whole = 1.0 if ms_between > 0 else math.nan
        return ICC(whole, whole, whole, a, k, ms_between, ms_within, math.inf, 0.0)
    f = ms_between / ms_within
    tail = (1 - confidence) / 2
    f_low = f / float(_scipy().f.ppf(1 - tail, df_between, df_within))
    f_high = f * float(_scipy().f.ppf(1 - tail, df_within, df_between))
    return ICC(
        icc=(ms_between - ms_within) / (ms_between + (k - 1) * ms_within),
        ci_low=(f_low - 1) / (f_low + k - 1),
        ci_high=(f_high - 1) / (f_high + k - 1),
        groups=a,
        repeats=k,
        ms_between=ms_between,
        ms_within=ms_within,
        f=f,
        p_value=float(_scipy().f.sf(f, df_between, df_within)),
    )


@dataclass(frozen=True)
class WelchTest:
    """Welch's unpaired t-test of ``mean(a) - mean(b)``."""

    mean_difference: float
    t: float
    df: float
    p_value: float  # two-sided; NaN when either side has fewer than 2 values


def welch_test(a: Sequence[float], b: Sequence[float]) -> WelchTest:
    """Compare two groups of different architectures (unequal variances allowed)."""
    x = np.asarray([v for v in a if not math.isnan(v)], dtype=float)
    y = np.asarray([v for v in b if not math.isnan(v)], dtype=float)
    if len(x) == 0 or len(y) == 0:
        return WelchTest(math.nan, math.nan, math.nan, math.nan)
    difference = float(x.mean() - y.mean())
    if len(x) < 2 or len(y) < 2:
        return WelchTest(difference, math.nan, math.nan, math.nan)
    vx, vy = float(x.var(ddof=1)) / len(x), float(y.var(ddof=1)) / len(y)
    if vx + vy == 0.0:
        t = 0.0 if difference == 0 else math.copysign(math.inf, difference)
        return WelchTest(difference, t, math.nan, 1.0 if difference == 0 else 0.0)
    t = difference / math.sqrt(vx + vy)
    df = (vx + vy) ** 2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1))
    return WelchTest(difference, t, df, float(2 * _scipy().t.sf(abs(t), df)))


@dataclass(frozen=True)
class PairComparison:
    """Two values of one knob compared: Welch's test and its Holm-adjusted p-value."""

    a: str
    b: str
    test: WelchTest
    p_adjusted: float


@dataclass(frozen=True)
class KnobEffect:
    """The main effect of one knob: a summary per value and every pair of values compared."""

    knob: str
    levels: dict[str, Summary]
    pairs: tuple[PairComparison, ...]


def knob_effect(knob: str, groups: Mapping[str, Sequence[float]]) -> KnobEffect:
    """Main effect of ``knob`` from ``{value: [architecture means]}`` (see the module docstring)."""
    levels = {value: summarize(values) for value, values in groups.items()}
    names = list(groups)
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    tests = [welch_test(groups[a], groups[b]) for a, b in pairs]
    adjusted = holm([test.p_value for test in tests])
    return KnobEffect(
        knob,
        levels,
        tuple(PairComparison(a, b, t, p) for (a, b), t, p in zip(pairs, tests, adjusted, strict=True)),
    )


def fidelity(means: np.ndarray) -> list[float]:
    """Spearman's rho of each epoch's column against the last, over the rows (architectures).

    ``means`` is architectures x epochs; a row with a NaN in either column is left out of that
    epoch's correlation; NaN when fewer than three rows remain or a column is constant.
    """
    table = np.asarray(means, dtype=float)
    final = table[:, -1]
    rhos = []
    for k in range(table.shape[1]):
        column = table[:, k]
        keep = ~(np.isnan(column) | np.isnan(final))
        rhos.append(spearman(column[keep], final[keep]))
    return rhos


def ranks(values: ArrayLike, axis: int = -1) -> np.ndarray:
    """Ranks 1..n along ``axis``, ties given their average rank (scipy's rankdata)."""
    return np.asarray(_scipy().rankdata(values, axis=axis), dtype=np.float64)


def spearman(x: ArrayLike, y: ArrayLike) -> float:
    """Spearman's rho; NaN for fewer than 3 pairs or a constant side."""
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(a) < 3 or np.all(a == a[0]) or np.all(b == b[0]):
        return math.nan
    return float(_scipy().spearmanr(a, b).statistic)


def kendall(x: ArrayLike, y: ArrayLike) -> float:
    """Kendall's tau-b; NaN for fewer than 3 pairs or a constant side."""
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(a) < 3 or np.all(a == a[0]) or np.all(b == b[0]):
        return math.nan
    return float(_scipy().kendalltau(a, b).statistic)


def spearman_interval(
    x: ArrayLike,
    y: ArrayLike,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of Spearman's rho over resampled pairs; NaN if none is defined."""
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(a) < 3:
        return math.nan, math.nan
    picks = np.random.default_rng(seed).integers(0, len(a), size=(resamples, len(a)))
    ra = ranks(a[picks], axis=1)
    rb = ranks(b[picks], axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    spread = np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))
    defined = spread > 0
    if not defined.any():
        return math.nan, math.nan
    rhos = (ra * rb).sum(axis=1)[defined] / spread[defined]
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(rhos, [tail, 100 - tail])
    return float(low), float(high)


def top_precision(scores: ArrayLike, quality: ArrayLike, share: float = 0.10) -> float:
    """Expected share of the scores' top ``share`` among the quality's top ``share``.

    Ties at the scores' cut-off are taken at random, counted exactly as the expected share
    (a tied group of m with h hits, r of them needed, adds r * h / m), so scores that tie
    everything get the base rate, not 1.
    """
    x, y = np.asarray(scores, dtype=np.float64), np.asarray(quality, dtype=np.float64)
    if len(x) == 0:
        return math.nan
    k = max(1, math.ceil(share * len(x)))
    best = np.zeros(len(y), dtype=bool)
    best[np.argsort(-y, kind="stable")[:k]] = True
    cut = np.sort(x)[::-1][k - 1]
    above, tied = x > cut, x == cut
    hits = best[above].sum() + (k - above.sum()) * best[tied].sum() / tied.sum()
    return float(hits / k)


def pareto_mask(maximize: Sequence[float], minimize: Sequence[float]) -> list[bool]:
    """Which points no other point beats (higher ``maximize`` and lower ``minimize``, one strictly).

    A point with a NaN coordinate is never on the front and never beats another.
    """
    up = np.asarray(maximize, dtype=float)
    down = np.asarray(minimize, dtype=float)
    valid = ~(np.isnan(up) | np.isnan(down))
    front = []
    for i in range(len(up)):
        if not valid[i]:
            front.append(False)
            continue
        at_least = valid & (up >= up[i]) & (down <= down[i])
        better = (up > up[i]) | (down < down[i])
        front.append(not bool(np.any(at_least & better)))
    return front
