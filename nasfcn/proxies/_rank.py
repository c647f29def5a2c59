"""How well a proxy ranks architectures: rank correlations, their bootstrap intervals, top-10% hits.

Against the architectures' trained quality (a table's mean final val mIoU), for every proxy:

- **Spearman's rho** (scipy) with a 95% percentile-bootstrap interval: architectures are
  resampled with replacement ``resamples`` times (seeded), rho taken on each resample
  (average ranks for ties; a resample where either side is constant is left out).
- **Kendall's tau-b** (scipy).
- **Top-10% precision**: of the ceil(10%) architectures the proxy ranks highest, the share
  that are among the ceil(10%) best by quality. Ties at the proxy's cut-off are taken at
  random, counted exactly as the expected share (a tied group of m with h hits, r of them
  needed, adds r * h / m), so a proxy that ties everything scores the base rate, not 1.
- **Rank ensembles** (every proxy counts higher as better, as in its paper): ``all``, the
  mean rank of every proxy, on every architecture; ``top3``, the mean rank of the three
  proxies with the best Spearman on a seeded half of the architectures, judged on the
  other half only, so the choice never sees the architectures it is scored on.

Architectures where a proxy has no value (it raised) or the quality is NaN are left out of
that proxy's figures; ``n`` says how many remained. Imports no torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:
    from types import ModuleType


def _scipy() -> ModuleType:
    """scipy.stats, loaded when a correlation is taken: a search's trials import the proxies
    to score networks and never correlate, so they do not pay for loading scipy."""
    from scipy import stats

    return stats


CONFIDENCE = 0.95
RESAMPLES = 1000
TOP_SHARE = 0.10
ENSEMBLE_SIZE = 3


@dataclass(frozen=True)
class Figures:
    """One proxy's (or ensemble's) agreement with the architectures' quality."""

    name: str
    n: int  # architectures the figures are over
    spearman: float
    spearman_low: float  # 95% bootstrap interval of spearman
    spearman_high: float
    kendall: float
    top10_precision: float
    seconds: float  # mean seconds per architecture (an ensemble: the sum over its members)
    members: tuple[str, ...] = ()  # an ensemble's proxies
    note: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "n": self.n,
            "spearman": _finite(self.spearman),
            "spearman_ci": [_finite(self.spearman_low), _finite(self.spearman_high)],
            "kendall": _finite(self.kendall),
            "top10_precision": _finite(self.top10_precision),
            "seconds": _finite(self.seconds),
            **({"members": list(self.members)} if self.members else {}),
            **({"note": self.note} if self.note else {}),
        }


def _finite(value: float) -> float | None:
    """JSON has no NaN or infinity: such a figure is written null."""
    return float(value) if math.isfinite(value) else None


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
    resamples: int = RESAMPLES,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of Spearman's rho over resampled pairs; NaN if none is defined."""
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(a) < 3:
        return math.nan, math.nan
    picks = np.random.default_rng(seed).integers(0, len(a), size=(resamples, len(a)))
    ra = _scipy().rankdata(a[picks], axis=1)
    rb = _scipy().rankdata(b[picks], axis=1)
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


def top_precision(scores: ArrayLike, quality: ArrayLike, share: float = TOP_SHARE) -> float:
    """Expected share of the proxy's top ``share`` among the quality's top ``share`` (module docstring)."""
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


def _figures(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    seconds: float,
    resamples: int,
    seed: int,
    members: tuple[str, ...] = (),
    note: str = "",
) -> Figures:
    low, high = spearman_interval(x, y, resamples, seed)
    return Figures(
        name=name,
        n=len(x),
        spearman=spearman(x, y),
        spearman_low=low,
        spearman_high=high,
        kendall=kendall(x, y),
        top10_precision=top_precision(x, y),
        seconds=seconds,
        members=members,
        note=note,
    )


def mean_rank(values: Mapping[str, np.ndarray], members: Sequence[str], rows: np.ndarray) -> np.ndarray:
    """The mean over ``members`` of each proxy's rank among ``rows`` (ascending: higher = better)."""
    return np.mean([_scipy().rankdata(values[name][rows]) for name in members], axis=0)


def correlate(
    values: Mapping[str, ArrayLike],
    seconds: Mapping[str, ArrayLike],
    quality: ArrayLike,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> list[Figures]:
    """Figures of every proxy (in ``values``' order), then of the ``all`` and ``top3`` ensembles."""
    y = np.asarray(quality, dtype=np.float64)
    arrays = {name: np.asarray(v, dtype=np.float64) for name, v in values.items()}
    times = {name: float(np.nanmean(np.asarray(s, dtype=np.float64))) for name, s in seconds.items()}
    rows = []
    for name, x in arrays.items():
        keep = ~np.isnan(x) & ~np.isnan(y)
        rows.append(_figures(name, x[keep], y[keep], times[name], resamples, seed))
    if len(arrays) >= 2:
        rows.append(_all_ensemble(arrays, times, y, resamples, seed))
    if len(arrays) > ENSEMBLE_SIZE:
        held_out = _top_ensemble(arrays, times, y, resamples, seed)
        if held_out is not None:
            rows.append(held_out)
    return rows


def _complete(arrays: Mapping[str, np.ndarray], members: Sequence[str], y: np.ndarray) -> np.ndarray:
    """Indices of the architectures with a value for every member and a quality."""
    keep = ~np.isnan(y)
    for name in members:
        keep &= ~np.isnan(arrays[name])
    return np.flatnonzero(keep)


def _all_ensemble(
    arrays: Mapping[str, np.ndarray], times: Mapping[str, float], y: np.ndarray, resamples: int, seed: int
) -> Figures:
    members = tuple(arrays)
    rows = _complete(arrays, members, y)
    score = mean_rank(arrays, members, rows)
    spent = sum(times[name] for name in members)
    return _figures(
        "ensemble:all", score, y[rows], spent, resamples, seed, members, "mean rank of every proxy"
    )


def _top_ensemble(
    arrays: Mapping[str, np.ndarray], times: Mapping[str, float], y: np.ndarray, resamples: int, seed: int
) -> Figures | None:
    rows = _complete(arrays, tuple(arrays), y)
    if len(rows) < 6:
        return None
    shuffled = np.random.default_rng(seed).permutation(rows)
    choose, judge = np.sort(shuffled[: len(rows) // 2]), np.sort(shuffled[len(rows) // 2 :])
    rhos = {name: spearman(x[choose], y[choose]) for name, x in arrays.items()}
    ranked = sorted((name for name in rhos if not math.isnan(rhos[name])), key=lambda n: -rhos[n])
    members = tuple(ranked[:ENSEMBLE_SIZE])
    if len(members) < ENSEMBLE_SIZE:
        return None
    score = mean_rank(arrays, members, judge)
    spent = sum(times[name] for name in members)
    note = (
        f"mean rank of the {ENSEMBLE_SIZE} proxies with the best Spearman on a seeded half "
        f"({len(choose)} architectures), judged on the other half only"
    )
    return _figures("ensemble:top3", score, y[judge], spent, resamples, seed, members, note)
