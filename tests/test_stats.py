"""Benchmark statistics, checked against SciPy's reference implementations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from nasfcn.stats import (
    fidelity,
    holm,
    icc1,
    knob_effect,
    paired_test,
    pareto_mask,
    summarize,
    tie_groups,
    welch_test,
)

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


# -- tabular benchmarks --------------------------------------------------------------------------


def test_icc1_matches_a_hand_computed_anova() -> None:
    # group means 1.5, 3.5, 5.5 around 3.5: SSB = 2 * (4 + 0 + 4) = 16 on 2 df, MSB = 8;
    # each group's SS is 0.5: SSW = 1.5 on 3 df, MSW = 0.5; ICC = (8 - 0.5) / (8 + 0.5).
    result = icc1([[1, 2], [3, 4], [5, 6]])
    assert (result.ms_between, result.ms_within, result.f) == pytest.approx((8.0, 0.5, 16.0))
    assert result.icc == pytest.approx(7.5 / 8.5)
    assert (result.groups, result.repeats) == (3, pytest.approx(2.0))
    f_low = 16.0 / scipy_stats.f.ppf(0.975, 2, 3)
    f_high = 16.0 * scipy_stats.f.ppf(0.975, 3, 2)
    assert result.ci_low == pytest.approx((f_low - 1) / (f_low + 1))
    assert result.ci_high == pytest.approx((f_high - 1) / (f_high + 1))
    assert result.ci_low < result.icc < result.ci_high
    assert result.p_value == pytest.approx(scipy_stats.f.sf(16.0, 2, 3))


def test_icc1_is_near_zero_when_groups_differ_only_by_noise_and_one_when_seeds_agree() -> None:
    rng = np.random.default_rng(3)
    noise = icc1(rng.normal(0.5, 0.05, size=(200, 3)).tolist())
    assert abs(noise.icc) < 0.1
    assert noise.ci_low < 0 < noise.ci_high
    apart = icc1([[0.1, 0.1], [0.5, 0.5], [0.9, 0.9]])
    assert (apart.icc, apart.ci_low, apart.ci_high) == (1.0, 1.0, 1.0)


def test_icc1_with_unequal_repeats_uses_the_adjusted_group_size() -> None:
    result = icc1([[1.0, 2.0, float("nan")], [3.0, 4.0, 5.0], [6.0]])  # NaN: a failed run, left out
    n, sizes = 6, [2, 3, 1]
    k0 = (n - sum(s * s for s in sizes) / n) / 2
    assert result.repeats == pytest.approx(k0)
    grand = 21.0 / 6
    msb = (2 * (1.5 - grand) ** 2 + 3 * (4.0 - grand) ** 2 + (6.0 - grand) ** 2) / 2
    msw = (0.5 + 2.0) / 3
    assert result.icc == pytest.approx((msb - msw) / (msb + (k0 - 1) * msw))
    assert math.isnan(icc1([[1.0], [2.0]]).icc)  # no repeats: nothing to compare with


def test_welch_test_matches_scipy() -> None:
    a, b = [0.61, 0.65, 0.58, 0.70], [0.55, 0.52, 0.60]
    result = welch_test(a, b)
    reference = scipy_stats.ttest_ind(a, b, equal_var=False)
    assert result.t == pytest.approx(reference.statistic)
    assert result.p_value == pytest.approx(reference.pvalue)
    assert result.mean_difference == pytest.approx(np.mean(a) - np.mean(b))
    assert math.isnan(welch_test([0.5], b).p_value)
    assert welch_test([0.5, 0.5], [0.5, 0.5]).p_value == 1.0


def test_knob_effect_summarizes_each_value_and_holm_adjusts_the_pairs() -> None:
    groups = {"a": [0.5, 0.52, 0.55], "b": [0.6, 0.63, 0.61], "c": [0.5, 0.7, 0.6]}
    effect = knob_effect("skip", groups)
    assert effect.levels["b"] == summarize(groups["b"])
    assert [(p.a, p.b) for p in effect.pairs] == [("a", "b"), ("a", "c"), ("b", "c")]
    raw = [welch_test(groups[p.a], groups[p.b]).p_value for p in effect.pairs]
    assert [p.p_adjusted for p in effect.pairs] == pytest.approx(holm(raw))


def test_fidelity_is_spearman_of_each_epoch_against_the_last() -> None:
    means = np.array([[1.0, 2.0, 3.0], [2.0, 1.0, 1.0], [3.0, 3.0, 2.0]])
    # final ranks (3, 1, 2); epoch 1 ranks (1, 2, 3): sum d^2 = 6, rho = 1 - 6 * 6 / (3 * 8) = -0.5
    assert fidelity(means) == pytest.approx([-0.5, 0.5, 1.0])
    with_nan = np.vstack([means, [[np.nan, 9.0, 9.0]]])  # left out of epoch 1 only
    assert fidelity(with_nan)[0] == pytest.approx(-0.5)


def test_pareto_mask_keeps_what_nothing_beats() -> None:
    miou = [0.5, 0.6, 0.55, 0.4, 0.5, float("nan")]
    latency = [10.0, 12.0, 11.0, 9.0, 11.0, 1.0]
    assert pareto_mask(miou, latency) == [True, True, True, True, False, False]
