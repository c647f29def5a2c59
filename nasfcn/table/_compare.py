"""Do two tables of one space rank its architectures alike?

The same space tabulated on two datasets (does a ranking on generated data carry over to
photographs?) or at two fidelities (is a 16-pixel, 256-image run a fair stand-in for the full
one, and at what share of its cost?). Over the architectures both tables hold: Spearman's rho
of their mean ``metric`` (over seeds) with a bootstrap interval, Kendall's tau-b, the overlap
of their top 10%, and what a run costs in each (mean training seconds per run).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nasfcn.stats import kendall, spearman, spearman_interval, top_precision
from nasfcn.table._errors import TableError
from nasfcn.table._table import Table

MIN_COMMON = 3  # rank correlations need three pairs


@dataclass(frozen=True)
class RankAgreement:
    """How alike two tables rank the architectures they share."""

    first: str  # each table's source
    second: str
    metric: str
    epoch_first: int
    epoch_second: int
    n: int  # architectures in both
    spearman: float
    spearman_low: float  # 95% bootstrap interval
    spearman_high: float
    kendall: float
    top10_overlap: float  # share of the first's top 10% that is in the second's top 10%
    seconds_first: float  # mean training seconds of a run up to its epoch
    seconds_second: float

    @property
    def cost_ratio(self) -> float:
        """What a run of the second table costs as a share of one of the first."""
        return self.seconds_second / self.seconds_first if self.seconds_first > 0 else math.nan

    def as_dict(self) -> dict[str, object]:
        def finite(value: float) -> float | None:
            return float(value) if math.isfinite(value) else None

        return {
            "first": self.first,
            "second": self.second,
            "metric": self.metric,
            "epochs": [self.epoch_first, self.epoch_second],
            "n": self.n,
            "spearman": finite(self.spearman),
            "spearman_ci": [finite(self.spearman_low), finite(self.spearman_high)],
            "kendall": finite(self.kendall),
            "top10_overlap": finite(self.top10_overlap),
            "seconds_per_run": [finite(self.seconds_first), finite(self.seconds_second)],
            "cost_ratio": finite(self.cost_ratio),
        }


def compare_tables(
    first: Table,
    second: Table,
    metric: str = "val_miou",
    epoch_first: int | None = None,
    epoch_second: int | None = None,
    resamples: int = 1000,
    seed: int = 0,
) -> RankAgreement:
    """Rank agreement of the two tables' per-architecture means (final epochs unless given)."""
    if first.space_hash != second.space_hash:
        raise TableError(
            f"{second.source} was built from space {second.facts.get('space_name')!r} "
            f"(hash {second.space_hash}), {first.source} from {first.facts.get('space_name')!r} "
            f"(hash {first.space_hash}): compare tables of one space"
        )
    common = sorted(set(first.archs()) & set(second.archs()))
    if len(common) < MIN_COMMON:
        raise TableError(
            f"{first.source} and {second.source} share {len(common)} architecture(s); "
            f"a rank correlation needs at least {MIN_COMMON}"
        )
    epoch_a, epoch_b = epoch_first or first.epochs, epoch_second or second.epochs
    x = _means(first, common, metric, epoch_a)
    y = _means(second, common, metric, epoch_b)
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    low, high = spearman_interval(x, y, resamples, seed)
    return RankAgreement(
        first=first.source,
        second=second.source,
        metric=metric,
        epoch_first=epoch_a,
        epoch_second=epoch_b,
        n=len(x),
        spearman=spearman(x, y),
        spearman_low=low,
        spearman_high=high,
        kendall=kendall(x, y),
        top10_overlap=top_precision(y, x) if len(x) else math.nan,
        seconds_first=_run_seconds(first, epoch_a),
        seconds_second=_run_seconds(second, epoch_b),
    )


def _means(table: Table, archs: list[str], metric: str, epoch: int) -> np.ndarray:
    means = table.means(metric, epoch)  # checks the metric and the epoch, naming the table
    index = {arch: i for i, arch in enumerate(table.archs())}
    return np.asarray([means[index[arch]] for arch in archs], dtype=np.float64)


def _run_seconds(table: Table, epoch: int) -> float:
    """Mean over runs of the seconds their first ``epoch`` epochs took (runs with none left out)."""
    seconds = table.values("seconds")[:, :, :epoch]
    trained = ~np.isnan(seconds).all(axis=2)
    totals = np.nansum(seconds, axis=2)[trained]
    return float(totals.mean()) if len(totals) else math.nan
