"""Benchmark statistics, checked against SciPy's reference implementations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from nasfcn.stats import holm, paired_test, summarize, tie_groups

SAMPLE = [0.712, 0.698, 0.731, 0.705, 0.722]


def test_summary_matches_scipy_t_interval() -> None:
    summary = summarize(SAMPLE)
    low, high = scipy_stats.t.interval(
        0.95, len(SAMPLE) - 1, loc=np.mean(SAMPLE), scale=scipy_stats.sem(SAMPLE)
    )
    assert summary.n == 5
    assert summary.mean == pytest.approx(np.mean(SAMPLE))
    assert summary.std == pytest.approx(np.std(SAMPLE, ddof=1))
    assert (summary.ci_low, summary.ci_high) == pytest.approx((low, high))


def test_summary_of_one_or_no_runs_has_no_interval() -> None:
    one = summarize([0.5])
    assert (one.n, one.mean) == (1, 0.5)
    assert math.isnan(one.std)
    assert math.isnan(one.ci_low)
    assert summarize([]).n == 0
    assert summarize([0.5, float("nan"), 0.7]).n == 2  # failed runs (NaN) are left out


def test_paired_test_matches_scipy_ttest_rel() -> None:
    a = {0: 0.71, 1: 0.69, 2: 0.74, 3: 0.70}
    b = {0: 0.68, 1: 0.69, 2: 0.70, 3: 0.66, 9: 0.1}  # seed 9 has no partner: left out
    result = paired_test(a, b)
    reference = scipy_stats.ttest_rel([a[s] for s in range(4)], [b[s] for s in range(4)])
    assert result.n == 4
    assert result.t == pytest.approx(reference.statistic)
    assert result.p_value == pytest.approx(reference.pvalue)
    assert result.mean_difference == pytest.approx(0.0275)


def test_paired_test_edge_cases() -> None:
    same = {0: 0.5, 1: 0.6, 2: 0.7}
    assert paired_test(same, same).p_value == 1.0
    shifted = {s: v + 0.1 for s, v in same.items()}  # a constant difference is certain
    assert paired_test(shifted, same).p_value == 0.0
    assert math.isnan(paired_test({0: 0.5}, {0: 0.4}).p_value)  # one pair tells nothing
    assert paired_test({0: 0.5}, {1: 0.4}).n == 0


def test_holm_adjustment() -> None:
    adjusted = holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert math.isnan(holm([0.01, float("nan")])[1])
    assert holm([0.01, float("nan")])[0] == pytest.approx(0.01)  # NaN is not in the family


def test_identical_distributions_tie_and_clear_gaps_do_not() -> None:
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.01, size=5)
    runs = {
        "winner": {s: 0.80 + noise[s] for s in range(5)},
        "twin": {s: 0.80 + noise[s] for s in range(5)},  # the same runs: a tie by definition
        "close": {s: 0.80 + noise[s] + rng.normal(0, 0.01) for s in range(5)},
        "worse": {s: 0.60 + noise[s] + rng.normal(0, 0.005) for s in range(5)},
    }
    groups, p_vs_best = tie_groups(runs)
    assert groups["winner"] == groups["twin"] == groups["close"] == 1
    assert groups["worse"] == 2
    best = max(runs, key=lambda n: np.mean(list(runs[n].values())))
    assert math.isnan(p_vs_best[best])
    assert all(p_vs_best[n] >= 0.05 for n in ("winner", "twin", "close") if n != best)
    assert p_vs_best["worse"] < 0.05
