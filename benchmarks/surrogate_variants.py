"""Variants of the ``surrogate`` strategy in the arena (issue 23): does a change to how it learns
or where it looks bring it to half of TPE + ASHA's epochs to the target?

Each variant is the shipped ``SurrogateSearch`` with one or more of these changes, registered
for the run as strategy ``surrogate-<name>`` (the arena replays any registered strategy):

- **fidelity**: every observation carries the epochs its trial trained (a last feature, their
  log) and candidates are scored at the most epochs any observation reached, so a network ASHA
  stopped after 2 epochs is not read as if it had trained 10.
- **whole**: after the random start-up, every untried genotype of the space is a candidate
  (the space must be finite; the shipped tables' 280) instead of ``POOL`` random draws.
- **kappa K**: optimism mean + K x the ensemble's spread (shipped: ``KAPPA``).
- **startup N**: random trials before the first fit (shipped: ``STARTUP``).

Every variant and TPE replay the same seeds (repeat r: seed + r), so they pair up. For each
variant: the median epochs to the target (the top 1% of the table's architectures), the
ratio of that median to TPE + ASHA's with a paired bootstrap 95% CI, the share of searches
that reached it, the repeats where each got there first, the paired Wilcoxon p (the
arena's own, ``nasfcn.arena.wilcoxon``) on epochs to the target (a search that never got
there counts one epoch past the longest replay) and on regret at equal epochs (the fewest
any replay trained). A markdown block on stdout.

Tune on seeds apart from those you report: ``--seed 1000`` to choose, ``--seed 0`` (the
README's and RESULTS.md's arena figures) to report.

    .venv/bin/python benchmarks/surrogate_variants.py --table benchmarks/tables/fcn_bench_shapes.parquet \
        [--variants fidelity,whole,fidelity+whole,kappa0,kappa2,startup4] [--repeats 100 --seed 0]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from nasfcn.arena import (
    ArenaSearch,
    ArenaTable,
    ReplayResult,
    epochs_to_target,
    regret_at,
    replays,
    target_of,
    wilcoxon,
)
from nasfcn.catalogue import Strategy
from nasfcn.genotype import Genotype
from nasfcn.search import SearcherInputs, _learned, register_strategy, unregister_strategy
from nasfcn.search._scheduler import TIME_ATTR
from nasfcn.search._strategies import sampler_seed
from nasfcn.table import load

SCHEDULER = "asha"
BASELINE = "tpe"
RESAMPLES = 2000
DEFAULT_VARIANTS = "shipped,fidelity,whole,fidelity+whole,kappa0,kappa2,startup4"


class VariantSearch(_learned.SurrogateSearch):
    """The shipped surrogate with the changes the class attributes name (see the module docstring)."""

    fidelity = False
    whole = False
    kappa = _learned.KAPPA
    startup = _learned.STARTUP

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._epochs: dict[str, int] = {}  # Ray trial id -> epochs reported so far
        self._trained: list[int] = []  # epochs of each observation, beside _values
        self._space_list: list[Genotype] | None = None
        self._pending_epochs = 1  # the completing trial's epochs, for _observe (1: a resumed row)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        super().on_trial_result(trial_id, result)
        if result.get(TIME_ATTR) is not None:
            self._epochs[trial_id] = max(self._epochs.get(trial_id, 0), int(result[TIME_ATTR]))

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if result and not error:
            self.on_trial_result(trial_id, result)
        self._pending_epochs = self._epochs.pop(trial_id, 1)
        super().on_trial_complete(trial_id, result, error)

    def _observe(self, genotype: Genotype, value: float) -> None:
        super()._observe(genotype, value)
        self._trained.append(self._pending_epochs)

    def _next(self) -> Genotype | None:
        if len(self._values) < self.startup:
            start = _learned.draw_pool(self.nas_space, self._rng, _learned.POOL, self._tried)
            return start[0] if start else None
        pool = self._candidates()
        if not pool:
            return None
        if self._fitted != len(self._values):
            self._surrogate.fit(self._features(self._seen, self._trained), np.asarray(self._values))
            self._fitted = len(self._values)
        top = max(self._trained) if self._trained else 1
        mean, spread = self._surrogate.predict(self._features(pool, [top] * len(pool)))
        return pool[int(np.argmax(mean + self.kappa * spread))]

    def _candidates(self) -> list[Genotype]:
        if not self.whole:
            return _learned.draw_pool(self.nas_space, self._rng, _learned.POOL, self._tried)
        if self._space_list is None:
            self._space_list = list(self.nas_space.iter_genotypes())
        return [g for g in self._space_list if g.trial_key not in self._tried]

    def _features(self, genotypes: list[Genotype], epochs: list[int]) -> np.ndarray:
        codes = self._encoder.matrix(genotypes)
        if not self.fidelity:
            return codes
        return np.hstack([codes, np.log(np.maximum(np.asarray(epochs, dtype=float), 1.0)).reshape(-1, 1)])


def variant_class(name: str) -> type[VariantSearch]:
    """``fidelity+whole`` / ``kappa2`` / ``startup4`` / ``shipped`` -> the class with those changes."""
    attrs: dict[str, Any] = {}
    for part in name.split("+"):
        if part in ("fidelity", "whole"):
            attrs[part] = True
        elif part.startswith("kappa"):
            attrs["kappa"] = float(part[len("kappa") :])
        elif part.startswith("startup"):
            attrs["startup"] = int(part[len("startup") :])
        elif part != "shipped":
            raise SystemExit(
                f"--variants: unknown change {part!r}; use fidelity, whole, kappaK, startupN, shipped"
            )
    return type(f"Variant_{name}", (VariantSearch,), attrs)


def register(name: str) -> str:
    """Register the variant as strategy ``surrogate-<name>`` for this process; returns that name."""
    cls = variant_class(name)
    strategy = f"surrogate-{name}"

    def build(inputs: SearcherInputs) -> VariantSearch:
        searcher = cls(
            inputs.space, inputs.metrics[0], inputs.modes[0], sampler_seed(inputs.seed, inputs.first_number),
            inputs.first_number, inputs.cache, inputs.train_defaults,
        )  # fmt: skip
        searcher.remember(inputs.finished, inputs.replays)
        return searcher

    register_strategy(Strategy(strategy, f"surrogate variant {name} (benchmarks/surrogate_variants.py)"))(
        build
    )
    return strategy


def paired_row(
    name: str, mine: list[ReplayResult], base: list[ReplayResult], target: float, budget: int
) -> str:
    """One markdown row: this variant against TPE + ASHA, repeat by repeat."""
    e_mine = np.asarray([epochs_to_target(r, target) for r in mine])
    e_base = np.asarray([epochs_to_target(r, target) for r in base])
    cap = max(r.trace["epochs"].max() for r in [*mine, *base]) + 1
    rng = np.random.default_rng(0)
    ratios = []
    for _ in range(RESAMPLES):
        rows = rng.integers(len(e_base), size=len(e_base))
        ratios.append(_ratio(np.median(e_mine[rows]), np.median(e_base[rows])))
    with np.errstate(invalid="ignore"):  # inf - inf inside the percentile of a never/never resample
        low, high = np.nanpercentile(ratios, [2.5, 97.5])
    capped = np.minimum(e_mine, cap)
    diff = capped - np.minimum(e_base, cap)
    regret = np.asarray([regret_at(a, "epochs", np.asarray([budget]))[0] for a in mine])
    regret_base = np.asarray([regret_at(b, "epochs", np.asarray([budget]))[0] for b in base])
    return (
        f"| {name} | {_epochs(np.median(e_mine))} | {_ratio(np.median(e_mine), np.median(e_base)):.2f} "
        f"[{low:.2f}, {high:.2f}] | {np.isfinite(e_mine).mean():.0%} "
        f"| {(diff < 0).sum()} / {(diff > 0).sum()} | {wilcoxon(capped, np.minimum(e_base, cap)):.2g} "
        f"| {np.median(regret):.4f} | {wilcoxon(regret, regret_base):.2g} |"
    )


def _ratio(mine: float, base: float) -> float:
    if not math.isfinite(base):
        return 0.0 if math.isfinite(mine) else math.nan
    return mine / base


def _epochs(value: float) -> str:
    return "never" if not math.isfinite(value) else f"{value:.0f}"


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--table", required=True, help="a table's .parquet file")
    p.add_argument("--variants", default=DEFAULT_VARIANTS, help="comma list; join changes with +")
    p.add_argument("--repeats", type=int, default=100)
    p.add_argument("--trials", type=int, default=64)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--seed", type=int, default=0, help="repeat r replays with seed + r")
    args = p.parse_args(argv)
    board = ArenaTable(load(args.table))
    target = target_of(board).value
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    strategies = [register(name) for name in names]
    try:
        searches = [ArenaSearch(s, SCHEDULER, args.trials, args.concurrency) for s in [BASELINE, *strategies]]
        start, done = time.monotonic(), [0]
        total = len(searches) * args.repeats

        def progress(result: ReplayResult) -> None:
            done[0] += 1
            left = (time.monotonic() - start) / done[0] * (total - done[0])
            print(f"\r{done[0]}/{total} replays, ~{left / 60:.0f} min left", end="", file=sys.stderr)

        results = replays(board, searches, args.repeats, args.seed, progress)
        print(file=sys.stderr)
    finally:
        for strategy in strategies:
            unregister_strategy(strategy)
    by = {s.strategy: [r for r in results if r.search.strategy == s.strategy] for s in searches}
    budget = min(int(r.trace["epochs"].max()) for r in results)
    base = np.asarray([epochs_to_target(r, target) for r in by[BASELINE]])
    print(
        f"{args.table}: {args.repeats} paired replays of {args.trials} trials, {args.concurrency} at a time, "
        f"seeds {args.seed}..{args.seed + args.repeats - 1}; target {target:.4f} (top 1%); "
        f"tpe + asha: median {_epochs(np.median(base))} epochs, reached {np.isfinite(base).mean():.0%}\n"
    )
    print(
        "| variant (+ asha) | epochs to target | ratio to tpe + asha [95% CI] | reached | first / later "
        f"| p (epochs) | regret at {budget} epochs | p (regret) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, strategy in zip(names, strategies, strict=True):
        print(paired_row(name, by[strategy], by[BASELINE], target, budget))


if __name__ == "__main__":
    main()
