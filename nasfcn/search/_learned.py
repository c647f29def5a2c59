"""The searchers behind ``surrogate`` and ``zc``: candidates ranked before they are trained.

``surrogate`` (``SurrogateSearch``): ``STARTUP`` random architectures first, then each
suggestion draws a seeded pool of ``POOL`` random candidates, drops the ones already
tried, and proposes the one with the highest optimistic estimate (mean + ``KAPPA`` x the
ensemble's spread) of ``nasfcn.search._surrogate.Surrogate``, refitted on every trial
that finished since the last suggestion: completed trials with their best val mIoU, trials
ASHA stopped with the best value they reached before the rung stopped them (a weak
architecture's low number is what the surrogate should learn from it), failed ones left
out. A resumed search refits on the trials earlier drivers finished and never proposes
one of them again.

``zc``: the searcher of ``tpe``, whose first ``ZC_START`` trials are the best of a seeded
pool of ``ZC_POOL`` random architectures by the mean rank of the data-free zero-cost
proxies ``ZC_PROXIES``. A searcher is built without data (``SearcherInputs`` names no
dataset, and the arena has none), so only proxies that use no image are taken: the
parameter count and synflow (a ones input). They run on the CPU on an input of the
space's ``min_size`` square with ``ZC_CLASSES`` output classes, and each architecture's
scores are computed once per process (``_PROXY_CACHE``, keyed by arch_id, proxy, input
and seed), so the arena's hundreds of replays of one space score it once.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import optuna
from ray.tune.search import Searcher

from nasfcn.genotype import Genotype
from nasfcn.search._searcher import CacheLookup, Replay, SpaceSearch, _NumberedSearch, _value
from nasfcn.search._surrogate import KnobEncoder, Surrogate
from nasfcn.space import ENUMERATION_LIMIT, SearchSpace

#: Random architectures before the surrogate ranks: the shipped spaces search 3 to 6 knobs,
#: and 8 random draws show every value of a knob with up to 5 choices with probability
#: >= 0.83 (1 - 5 x (4/5)^8), so the first fit has seen most of each knob's range; fewer
#: leave the trees splitting on one or two knobs, more spend the budget TPE's way.
STARTUP = 8
POOL = 128  # random draws per suggestion (about 100 distinct architectures of fcn_bench)
KAPPA = 1.0  # optimism: mean + KAPPA x the ensemble's standard deviation
ZC_POOL = 256  # random architectures the zero-cost proxies rank once
ZC_START = 4  # the pool's best, tried first; TPE models from then on
ZC_PROXIES = ("params", "synflow")
ZC_CLASSES = 3
PROXY_SEED = 0  # proxies measure the architecture, not the search: one seed for every search
_PROXY_CACHE: dict[tuple[str, str, int, int, int, int], float] = {}


def draw_pool(space: SearchSpace, rng: np.random.Generator, size: int, skip: set[str]) -> list[Genotype]:
    """Up to ``size`` distinct random genotypes of ``space`` whose trial keys are not in ``skip``."""
    seen: dict[str, Genotype] = {}
    for seed in rng.integers(2**31, size=size):
        genotype = space.sample(int(seed))
        if genotype.trial_key not in skip:
            seen.setdefault(genotype.trial_key, genotype)
    if not seen and space.size(include_train=True) <= ENUMERATION_LIMIT:
        # a small space nearly exhausted: the untried rest, in the space's order
        left = (g for g in space.iter_genotypes() if g.trial_key not in skip)
        seen = {g.trial_key: g for g, _ in zip(left, range(size), strict=False)}
    return list(seen.values())


class SurrogateSearch(_NumberedSearch, Searcher):
    """Random start-up, then the untried candidate the refitted surrogate is most optimistic about."""

    def __init__(
        self,
        space: SearchSpace,
        metric: str,
        mode: str,
        seed: int,
        first_number: int,
        cache: CacheLookup | None = None,
        train_defaults: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(first_number, cache, metric=metric, mode=mode)
        self.nas_space = space
        self._sign = 1.0 if mode == "max" else -1.0
        self._encoder = KnobEncoder(space, train_defaults)
        self._surrogate = Surrogate(seed=seed)
        self._rng = np.random.default_rng([seed, first_number])
        self._tried: set[str] = set()  # trial keys proposed, replayed or finished before
        self._running: dict[str, Genotype] = {}  # Ray trial id -> its genotype
        self._best: dict[str, float] = {}  # Ray trial id -> best value reported so far
        self._seen: list[Genotype] = []  # observed genotypes, with their values below
        self._values: list[float] = []
        self._fitted = 0  # observations the surrogate was last fitted on

    def remember(self, finished: list[dict[str, Any]], replays: list[Replay]) -> None:
        """Trials earlier drivers finished (observations) and reruns to come: never proposed again."""
        for row in finished:
            genotype = Genotype.from_json(row["genotype_json"])
            self._tried.add(genotype.trial_key)
            value = _value(row, self.metric) if row["status"] != "failed" else None
            if value is not None:
                self._observe(genotype, value)
        self._tried |= {Genotype.from_json(r.genotype_json).trial_key for r in replays}

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        config = self._replay_config(trial_id)
        if config is None:
            genotype = self._next()
            if genotype is None:
                return Searcher.FINISHED  # type: ignore[return-value]  # a str where Ray's hint says dict
            config = self._trial_config(genotype, None)
        genotype = Genotype.from_json(config["genotype"])
        self._tried.add(genotype.trial_key)
        self._running[trial_id] = genotype
        return config

    def _next(self) -> Genotype | None:
        pool = draw_pool(self.nas_space, self._rng, POOL, self._tried)
        if not pool:
            return None
        if len(self._values) < STARTUP:
            return pool[0]
        if self._fitted != len(self._values):
            self._surrogate.fit(self._encoder.matrix(self._seen), np.asarray(self._values))
            self._fitted = len(self._values)
        mean, spread = self._surrogate.predict(self._encoder.matrix(pool))
        return pool[int(np.argmax(mean + KAPPA * spread))]

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        value = result.get(self.metric)
        if value is not None and not math.isnan(float(value)):
            best = self._best.get(trial_id, -math.inf)
            self._best[trial_id] = max(best, self._sign * float(value))

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self._replay_trials.pop(trial_id, None)
        genotype = self._running.pop(trial_id, None)
        if result and not error:
            self.on_trial_result(trial_id, result)
        best = self._best.pop(trial_id, None)
        if genotype is not None and best is not None and not error:
            self._observe(genotype, self._sign * best)

    def _observe(self, genotype: Genotype, value: float) -> None:
        self._seen.append(genotype)
        self._values.append(self._sign * value)


def zc_start(space: SearchSpace, seed: int, skip: set[str], train_defaults: dict[str, Any]) -> list[Genotype]:
    """The ``ZC_START`` best of a seeded pool of untried architectures by the proxies' mean rank."""
    from scipy.stats import rankdata

    pool = draw_pool(space, np.random.default_rng([seed, 1]), ZC_POOL, skip)
    pool = [g for g in pool if space.params_for(g, train_defaults) is not None]
    if not pool:
        return []
    ranks = [rankdata([_proxy(space, g, name) for g in pool], nan_policy="omit") for name in ZC_PROXIES]
    score = np.nanmean(np.nan_to_num(np.vstack(ranks), nan=0.0), axis=0)
    order = np.argsort(-score, kind="stable")
    return [pool[int(i)] for i in order[:ZC_START]]


def _proxy(space: SearchSpace, genotype: Genotype, name: str) -> float:
    """One data-free proxy of one architecture, computed once per process (NaN where it raised)."""

    def key(proxy: str) -> tuple[str, str, int, int, int, int]:
        return (genotype.arch_id, proxy, space.min_size, space.in_channels, ZC_CLASSES, PROXY_SEED)

    if key(name) not in _PROXY_CACHE:
        from nasfcn import proxies

        missing = [p for p in ZC_PROXIES if key(p) not in _PROXY_CACHE]
        results = proxies.compute(genotype, _blank_batch(space), missing, seed=PROXY_SEED)
        for proxy, result in results.items():
            _PROXY_CACHE[key(proxy)] = result.value
    return _PROXY_CACHE[key(name)]


def _blank_batch(space: SearchSpace) -> Any:
    """An all-zero image and mask of the space's smallest input: the shapes data-free proxies read."""
    import torch

    from nasfcn import proxies

    size = space.min_size
    images = torch.zeros((1, space.in_channels, size, size))
    return proxies.Batch(images, torch.zeros((1, size, size), dtype=torch.long), ZC_CLASSES)


def enqueue(searcher: SpaceSearch, genotypes: list[Genotype], train_defaults: dict[str, Any]) -> int:
    """Queue ``genotypes`` as the study's next trials (Optuna's warm start); returns how many."""
    study = searcher._ot_study
    if study is None:
        raise RuntimeError("the searcher's Optuna study is made when it is built; this one has none")
    for genotype in genotypes:
        study.enqueue_trial(searcher.nas_space.params_for(genotype, train_defaults), skip_if_exists=True)
    return len(genotypes)


def zc_sampler(seed: int) -> optuna.samplers.BaseSampler:
    """TPE that models from the first finished trials on: the proxies' picks replace its random start."""
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=ZC_START)
