"""What the arena measures over repeated replays, per strategy x scheduler.

- **Regret** at a moment: the table's best mean val mIoU minus the true mean (over the
  table's seeds) of the architecture the search would export then, its best single run so
  far. A strategy fooled by a lucky run is charged for it.
- **Anytime regret curves** against epochs trained and against simulated wall time: at each
  point the regret of the last epoch that ended by then (a finished search keeps its last
  value); the median over repeats with a percentile-bootstrap confidence interval.
- **Epochs to target**: the first epoch count at which the exported architecture's true mean
  reaches the target (by default the top 1% of architectures, ``ArenaTable.target``); a
  replay that never does counts as infinity, so a median of "never" reads as such.
- **Regret at equal epochs**: at one budget every replay reached (by default the fewest
  epochs any replay trained), so early stopping is not charged for training less.
- **Winner's curse**: the exported architecture's best observed run minus its true mean,
  at the end of each replay (with confirmation: its pooled mean over the runs minus its true mean;
  ``confirm_epochs`` says what the confirmation runs cost, already counted in ``epochs``).
- **Average ranks** per epoch budget: each repeat ranks the pairs by regret (ties share
  the mean rank); the ranks are averaged over the repeats.
- **Paired tests**: every pair against the baseline (by default random + FIFO; ``nasfcn arena
  --baseline`` picks another pair) on regret at equal epochs, repeat by repeat (Wilcoxon
  signed-rank, two-sided), Holm-adjusted as one family.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as _scipy

from nasfcn.arena._replay import ArenaError, ReplayResult, pair_name
from nasfcn.stats import CONFIDENCE, holm

BASELINE = ("random", "fifo")
RESAMPLES = 1000
RANK_BUDGETS = 20  # evenly spaced epoch budgets the average ranks are given at
#: Points of a regret curve, per pair: a plot has fewer pixels; the bootstrap's cost and the
#: report's size grow with them, not with the epochs the replays trained.
CURVE_POINTS = 500
#: Values one bootstrap step resamples at once (resamples x repeats x columns): a few MB at a
#: time, not gigabytes that the median copies again.
_BOOTSTRAP_CHUNK = 4_000_000


@dataclass(frozen=True)
class ArenaSummary:
    """Everything measured over the replays, as frames (one row per pair, repeat or curve point)."""

    target: float  # the true mean val mIoU that counts as reaching the target
    budget: int  # epochs at which regret is compared ("equal epochs")
    per_repeat: pd.DataFrame  # pair, strategy, scheduler, seed, epochs, seconds, epochs_to_target, ...
    summary: pd.DataFrame  # one row per pair: medians with CIs, share reached, p-values, mean rank
    epoch_curves: pd.DataFrame  # pair, epochs, median, low, high
    time_curves: pd.DataFrame  # pair, time, median, low, high
    ranks: pd.DataFrame  # pair, epochs, mean_rank at RANK_BUDGETS budgets up to the most epochs trained
    baseline: tuple[str, str] = BASELINE  # (strategy, scheduler) every other pair is tested against


def epochs_to_target(result: ReplayResult, target: float) -> float:
    """The first epoch count whose exported architecture has a true mean >= ``target``; inf: never."""
    reached = result.trace["true_mean"].to_numpy() >= target
    return float(result.trace["epochs"].to_numpy()[reached.argmax()]) if reached.any() else math.inf


def regret_at(result: ReplayResult, axis: str, points: np.ndarray) -> np.ndarray:
    """Regret at each of ``points`` of ``axis`` ("epochs" or "time"): that of the last epoch ended
    by then; NaN before the first."""
    positions = np.searchsorted(result.trace[axis].to_numpy(), points, side="right") - 1
    regret = result.trace["regret"].to_numpy()
    return np.where(positions >= 0, regret[np.maximum(positions, 0)], np.nan)


def bootstrap_median(
    values: np.ndarray, resamples: int = RESAMPLES, seed: int = 0, confidence: float = CONFIDENCE
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median over axis 0 (repeats) of every column, with a percentile-bootstrap interval."""
    data = np.asarray(values, dtype=np.float64)
    if data.ndim == 1:
        data = data[:, None]
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(data), size=(resamples, len(data)))
    step = max(1, _BOOTSTRAP_CHUNK // max(1, picks.size))
    chunks = [np.median(data[:, i : i + step][picks], axis=1) for i in range(0, data.shape[1], step)]
    medians = np.concatenate(chunks, axis=1) if chunks else np.empty((resamples, 0))  # resamples x columns
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(medians, [tail, 100 - tail], axis=0, method="lower")
    return np.median(data, axis=0), low, high


def wilcoxon(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired ``a - b``; 1.0 when every pair ties, NaN
    with no pairs."""
    differences = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    differences = differences[~np.isnan(differences)]
    if len(differences) == 0:
        return math.nan
    if np.all(differences == 0):
        return 1.0
    # zsplit keeps tied pairs in the ranks; the normal approximation is exact enough for the
    # arena's 10+ repeats and, unlike the exact method, defined with zeros and ties
    return float(_scipy.wilcoxon(differences, zero_method="zsplit", method="approx").pvalue)


def compare(
    results: Sequence[ReplayResult],
    target: float,
    budget: int | None = None,
    baseline: tuple[str, str] = BASELINE,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> ArenaSummary:
    """Every measurement of the arena over ``results`` (replays of several pairs, repeats by seed),
    each pair tested against ``baseline`` (strategy, scheduler); no tests when it is not among them."""
    if not results:
        raise ArenaError("no replays to compare")
    trained = min(int(r.trace["epochs"].iloc[-1]) if len(r.trace) else 0 for r in results)
    budget = trained if budget is None else budget
    if budget < 1:
        raise ArenaError(f"the epoch budget for regret at equal epochs must be >= 1, got {budget}")
    repeats = per_repeat(results, target, budget)
    summary = _summary(repeats, baseline, resamples, seed)
    epochs = curve_points(max(int(r.trace["epochs"].iloc[-1]) for r in results if len(r.trace)))
    starts = max(float(r.trace["time"].iloc[0]) for r in results if len(r.trace))
    ends = max(float(r.trace["time"].iloc[-1]) for r in results if len(r.trace))
    times = np.linspace(starts, max(starts, ends), 200)
    return ArenaSummary(
        target,
        budget,
        repeats,
        summary,
        curves(results, "epochs", epochs, resamples, seed),
        curves(results, "time", times, resamples, seed),
        mean_ranks(results, sorted({round(float(b)) for b in np.linspace(1, epochs[-1], RANK_BUDGETS)})),
        baseline,
    )


def curve_points(last: int, points: int = CURVE_POINTS) -> np.ndarray:
    """The epoch counts a regret curve is given at: every one up to ``points`` of them, else
    ``points`` evenly spaced from 1 to ``last`` (both included)."""
    if last <= points:
        return np.arange(1, last + 1)
    return np.unique(np.rint(np.linspace(1, last, points)).astype(np.int64))


def per_repeat(results: Sequence[ReplayResult], target: float, budget: int) -> pd.DataFrame:
    """One row per replay: its cost, epochs to target, regret at ``budget`` and the winner's curse."""
    rows = []
    for result in results:
        trace = result.trace
        empty = len(trace) == 0
        rows.append(
            {
                "pair": result.search.pair,
                "strategy": result.search.strategy,
                "scheduler": result.search.scheduler,
                "seed": result.seed,
                "epochs": 0 if empty else int(trace["epochs"].iloc[-1]),
                "confirm_epochs": 0 if result.confirmation is None else result.confirmation.epochs,
                "seconds": 0.0 if empty else float(trace["time"].iloc[-1]),
                "epochs_to_target": epochs_to_target(result, target),
                "regret_at_budget": float(regret_at(result, "epochs", np.asarray([budget]))[0]),
                "final_regret": result.final_regret,
                "winners_curse": math.nan
                if empty
                else float(trace["observed"].iloc[-1] - trace["true_mean"].iloc[-1]),
            }
        )
    frame = pd.DataFrame(rows)
    frame["reached"] = np.isfinite(frame["epochs_to_target"])
    return frame


def curves(
    results: Sequence[ReplayResult], axis: str, points: np.ndarray, resamples: int = RESAMPLES, seed: int = 0
) -> pd.DataFrame:
    """Median regret over repeats with its bootstrap interval at ``points`` of ``axis``, per pair."""
    frames = []
    for pair, group in _by_pair(results).items():
        values = np.vstack([regret_at(r, axis, points) for r in group])
        known = ~np.isnan(values).any(axis=0)  # a point before some replay's first epoch has no median
        median, low, high = bootstrap_median(values[:, known], resamples, seed)
        frames.append(
            pd.DataFrame({"pair": pair, axis: points[known], "median": median, "low": low, "high": high})
        )
    return pd.concat(frames, ignore_index=True)


def mean_ranks(results: Sequence[ReplayResult], budgets: Sequence[int]) -> pd.DataFrame:
    """Each pair's rank by regret (1: lowest; ties share the mean rank) at each epoch budget, averaged
    over the repeats every pair ran (paired by seed): pair, epochs, mean_rank."""
    rows = []
    points = np.asarray(budgets)
    for pair, group in _by_pair(results).items():
        for result in group:
            for budget, regret in zip(points, regret_at(result, "epochs", points), strict=True):
                rows.append({"pair": pair, "seed": result.seed, "epochs": int(budget), "regret": regret})
    table = pd.DataFrame(rows).pivot_table(
        index=["epochs", "seed"], columns="pair", values="regret", sort=False
    )
    ranks = table.dropna().rank(axis=1, method="average").groupby(level="epochs").mean()
    return ranks.reset_index().melt(id_vars="epochs", var_name="pair", value_name="mean_rank")


def _by_pair(results: Sequence[ReplayResult]) -> dict[str, list[ReplayResult]]:
    grouped: dict[str, list[ReplayResult]] = {}
    for result in results:
        grouped.setdefault(result.search.pair, []).append(result)
    return grouped


def _summary(repeats: pd.DataFrame, baseline: tuple[str, str], resamples: int, seed: int) -> pd.DataFrame:
    """One row per pair: medians with intervals, the share that reached the target, tests and ranks."""
    base = pair_name(baseline)
    by_seed = repeats.pivot_table(index="seed", columns="pair", values="regret_at_budget", sort=False)
    ranks = by_seed.rank(axis=1, method="average").mean(axis=0)
    rows = []
    for pair, group in repeats.groupby("pair", sort=False):
        row = {"pair": pair, "strategy": group["strategy"].iloc[0], "scheduler": group["scheduler"].iloc[0]}
        row["repeats"] = len(group)
        for column in ("epochs_to_target", "regret_at_budget", "winners_curse"):
            median, low, high = bootstrap_median(group[column].to_numpy(), resamples, seed)
            row.update({column: median[0], f"{column}_low": low[0], f"{column}_high": high[0]})
        row["reached_share"] = float(group["reached"].mean())
        row["mean_rank"] = float(ranks.get(pair, math.nan))
        paired = by_seed[[pair, base]].dropna() if base in by_seed and pair != base else None
        row["p_value"] = math.nan if paired is None else wilcoxon(paired[pair], paired[base])
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame["p_holm"] = holm(frame["p_value"].tolist())
    return frame
