"""How well a proxy ranks architectures: rank correlations, their bootstrap intervals, top-10% hits.

Against the architectures' trained quality (a table's mean final val mIoU), for every proxy:

- **Spearman's rho** with a 95% percentile-bootstrap interval and **Kendall's tau-b**
  (``nasfcn.stats``: architectures resampled with replacement, seeded).
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

import numpy as np
from numpy.typing import ArrayLike

from nasfcn.stats import kendall, ranks, spearman, spearman_interval, top_precision

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
    return np.mean([ranks(values[name][rows]) for name in members], axis=0)


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
