"""Rank correlations, their bootstrap intervals, top-10% precision and the rank ensembles."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from nasfcn.proxies import correlate, kendall, spearman, spearman_interval, top_precision

QUALITY = np.array([0.31, 0.12, 0.55, 0.40, 0.27, 0.48, 0.05, 0.61, 0.33, 0.22, 0.50, 0.18])
GOOD = QUALITY + np.array([0.05, -0.02, 0.01, -0.08, 0.1, 0.03, 0.0, -0.04, 0.02, 0.06, -0.1, 0.01])
TIED = np.array([1.0, 1, 2, 2, 1, 2, 1, 3, 1, 1, 2, 1])


def test_spearman_and_kendall_are_scipys() -> None:
    for scores in (GOOD, TIED, -GOOD):
        assert spearman(scores, QUALITY) == pytest.approx(
            stats.spearmanr(scores, QUALITY).statistic, abs=1e-12
        )
        assert kendall(scores, QUALITY) == pytest.approx(
            stats.kendalltau(scores, QUALITY).statistic, abs=1e-12
        )
    assert np.isnan(spearman(np.ones(12), QUALITY))


def test_the_bootstrap_interval_is_seeded_and_holds_the_estimate() -> None:
    low, high = spearman_interval(GOOD, QUALITY, resamples=500, seed=1)
    assert (low, high) == spearman_interval(GOOD, QUALITY, resamples=500, seed=1)
    assert low < spearman(GOOD, QUALITY) < high <= 1
    # A resample's rho is scipy's on the same resample
    picks = np.random.default_rng(1).integers(0, 12, size=(500, 12))
    rhos = [stats.spearmanr(GOOD[p], QUALITY[p]).statistic for p in picks]
    rhos = [r for r in rhos if not np.isnan(r)]
    assert (low, high) == pytest.approx(tuple(np.percentile(rhos, [2.5, 97.5])), abs=1e-12)


def test_top_ten_percent_precision_counts_ties_as_their_expected_share() -> None:
    # 12 architectures: the top 10% is 2 (ceil 1.2); the best two by quality are 7 (0.61) and 2 (0.55).
    assert top_precision(GOOD, QUALITY) == 1.0  # GOOD's top two are 2 (0.56) and 7 (0.57)
    assert top_precision(-QUALITY, QUALITY) == 0.0
    # TIED: 7 (3.0) is above the cut; four architectures tie at 2.0 (2, 3, 5, 10), one hit (2) among
    # them, one place left: expected hits 1 + 1/4.
    assert top_precision(TIED, QUALITY) == pytest.approx((1 + 1 / 4) / 2)
    assert top_precision(np.zeros(12), QUALITY) == pytest.approx(2 / 12)  # the base rate


def test_correlate_reports_every_proxy_and_the_ensembles() -> None:
    values = {"good": GOOD, "tied": TIED, "bad": -GOOD, "noise": np.arange(12.0) % 5}
    seconds = {name: np.full(12, 0.5) for name in values}
    rows = {row.name: row for row in correlate(values, seconds, QUALITY, resamples=200)}
    assert list(rows) == ["good", "tied", "bad", "noise", "ensemble:all", "ensemble:top3"]
    assert rows["good"].spearman == pytest.approx(stats.spearmanr(GOOD, QUALITY).statistic)
    assert rows["good"].seconds == 0.5
    mean_rank = np.mean([stats.rankdata(v) for v in values.values()], axis=0)
    assert rows["ensemble:all"].spearman == pytest.approx(stats.spearmanr(mean_rank, QUALITY).statistic)
    assert rows["ensemble:all"].seconds == 2.0
    top3 = rows["ensemble:top3"]
    assert top3.n == 6
    assert len(top3.members) == 3
    assert "bad" not in top3.members


def test_a_proxy_that_failed_on_some_architectures_is_judged_on_the_rest() -> None:
    partial = GOOD.copy()
    partial[[0, 5]] = np.nan
    (row,) = correlate({"p": partial}, {"p": np.ones(12)}, QUALITY, resamples=50)
    keep = ~np.isnan(partial)
    assert row.n == 10
    assert row.spearman == pytest.approx(stats.spearmanr(partial[keep], QUALITY[keep]).statistic)
