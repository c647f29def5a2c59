"""Search strategies: each one registration naming the strategy and how to build its searcher.

An Optuna-backed strategy is one ``@optuna_strategy`` on a function that makes its sampler::

    @optuna_strategy(Strategy("qmc", "quasi-Monte Carlo: evenly spread samples"))
    def _qmc(seed: int, objectives: int) -> optuna.samplers.BaseSampler:
        return optuna.samplers.QMCSampler(seed=seed)

The registration catalogues the name and its properties (``nasfcn.catalogue.STRATEGIES``,
which ``--strategy``, its help and the config checks read) unless the catalogue lists it
already, as it does the built-in ones below, whose names the CLI help shows without
importing Optuna. Any other searcher is ``@register_strategy`` on a function of
``SearcherInputs``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna

from nasfcn import catalogue
from nasfcn.catalogue import Strategy
from nasfcn.genotype import Genotype
from nasfcn.registry import Registry
from nasfcn.search import _learned
from nasfcn.search._searcher import CacheLookup, GridSearch, Replay, SpaceSearch, sampler_seed
from nasfcn.space import SearchSpace

log = logging.getLogger("nasfcn.search")


@dataclass(frozen=True)
class SearcherInputs:
    """What the driver knows when it builds a strategy's searcher (Ray is up, the run registered)."""

    space: SearchSpace
    metrics: list[str]  # reported metric names, the first the main one
    modes: list[str]  # "max" | "min" per metric
    seed: int
    first_number: int  # the number of the next new trial
    finished: list[dict[str, Any]]  # trials earlier drivers of this search finished
    replays: list[Replay]  # run first, before the searcher's own suggestions
    cache: CacheLookup | None  # finds a reusable stored result for a genotype
    train_defaults: dict[str, Any]  # the recipe's values of searchable training knobs


SearcherFactory = Callable[[SearcherInputs], Any]  # -> a Ray Tune Searcher of nasfcn trial configs
#: (seed, number of objectives) -> the strategy's Optuna sampler
SamplerFactory = Callable[[int, int], optuna.samplers.BaseSampler]

#: strategy name -> how to build its searcher; bound to the catalogue's strategies.
SEARCHERS: Registry[SearcherFactory] = Registry("search strategy", catalogue.STRATEGIES)


def register_strategy(strategy: Strategy | str) -> Callable[[SearcherFactory], SearcherFactory]:
    """Register the decorated searcher factory under ``strategy``, cataloguing it if it is new.

    A name (``"grid"``) registers a strategy the catalogue already lists.
    """

    def decorator(build: SearcherFactory) -> SearcherFactory:
        name = _catalogued(strategy)
        try:
            SEARCHERS.add(name, build)
        except ValueError:
            if not isinstance(strategy, str):
                catalogue.STRATEGIES.remove(name)  # leave no strategy without a searcher
            raise
        return build

    return decorator


def optuna_strategy(strategy: Strategy | str) -> Callable[[SamplerFactory], SamplerFactory]:
    """Register an Optuna-backed strategy: the decorated function makes its sampler."""

    def decorator(make_sampler: SamplerFactory) -> SamplerFactory:
        register_strategy(strategy)(lambda inputs: _space_search(inputs, make_sampler))
        return make_sampler

    return decorator


def _space_search(inputs: SearcherInputs, make_sampler: SamplerFactory) -> SpaceSearch:
    """An Optuna searcher on the strategy's sampler, told the trials a resumed search finished."""
    searcher = SpaceSearch(
        inputs.space,
        make_sampler(sampler_seed(inputs.seed, inputs.first_number), len(inputs.metrics)),
        inputs.metrics,
        inputs.modes,
        inputs.first_number,
        inputs.cache,
        inputs.train_defaults,
    )
    if inputs.finished:
        told = searcher.warm_start(inputs.finished, inputs.metrics)
        log.info("told the optimizer about %d finished trials", told)
    return searcher


def unregister_strategy(name: str) -> None:
    """Remove a strategy's searcher and its catalogue entry (a plugin unloaded, a test done)."""
    SEARCHERS.remove(name)
    catalogue.STRATEGIES.remove(name)


def _catalogued(strategy: Strategy | str) -> str:
    """The strategy's name, catalogued: a name must be listed; a new Strategy is added."""
    if isinstance(strategy, str):
        catalogue.STRATEGIES.get(strategy)  # an unknown name raises, listing the catalogued ones
        return strategy
    catalogue.STRATEGIES.add(strategy.name, strategy)
    return strategy.name


@optuna_strategy("random")
def _random(seed: int, objectives: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed)


@optuna_strategy("tpe")
def _tpe(seed: int, objectives: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=4)


@optuna_strategy("nsga2")
def _nsga2(seed: int, objectives: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.NSGAIISampler(seed=seed, population_size=8)


@register_strategy("grid")
def _grid(inputs: SearcherInputs) -> GridSearch:
    """Every architecture once; finished ones and reruns under their own numbers are skipped."""
    done = {Genotype.from_json(row["genotype_json"]).trial_key for row in inputs.finished}
    done |= {Genotype.from_json(r.genotype_json).trial_key for r in inputs.replays if r.number is not None}
    return GridSearch(
        inputs.space, inputs.metrics[0], inputs.modes[0], inputs.first_number, done, inputs.cache
    )


@register_strategy("surrogate")
def _surrogate(inputs: SearcherInputs) -> _learned.SurrogateSearch:
    """Seeded as a resume must be (``sampler_seed``); it learns from the trials already finished."""
    searcher = _learned.SurrogateSearch(
        inputs.space,
        inputs.metrics[0],
        inputs.modes[0],
        sampler_seed(inputs.seed, inputs.first_number),
        inputs.first_number,
        inputs.cache,
        inputs.train_defaults,
    )
    searcher.remember(inputs.finished, inputs.replays)
    return searcher


@register_strategy("zc")
def _zc(inputs: SearcherInputs) -> SpaceSearch:
    """TPE whose first trials are the zero-cost proxies' picks among architectures not yet tried."""
    searcher = _space_search(inputs, lambda seed, objectives: _learned.zc_sampler(seed))
    done = {Genotype.from_json(row["genotype_json"]).trial_key for row in inputs.finished}
    done |= {Genotype.from_json(r.genotype_json).trial_key for r in inputs.replays}
    seed = sampler_seed(inputs.seed, inputs.first_number)
    start = _learned.zc_start(inputs.space, seed, done, inputs.train_defaults)
    _learned.enqueue(searcher, start, inputs.train_defaults)
    return searcher
