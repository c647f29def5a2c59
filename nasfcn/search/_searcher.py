"""Where candidates come from: Optuna behind Ray Tune (random, TPE, NSGA-II, ...) or a grid.

Which searcher a strategy uses, and with which Optuna sampler, is its registration in
``nasfcn.search._strategies``.

Both searchers run in the driver. Each suggestion becomes a trial config holding the
genotype JSON (workers need no space file), the trial's number in the search, the
optimizer's parameters (so a resumed search can replay them), and — when the database
already holds a result for the same network, training knobs, dataset and recipe — that
result, so the trial reports it instead of training.

Before their own suggestions both run the ``Replay`` queue: named reference designs, and
on a resume the interrupted trials again (same configuration, same number). When one
finishes, the optimizer is told its result as if it had suggested it.
"""

from __future__ import annotations

import json
import math
import pickle
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch
from ray.tune.utils import flatten_dict

from nasfcn.catalogue import STRATEGIES, one_of
from nasfcn.genotype import Genotype
from nasfcn.space import ENUMERATION_LIMIT, SearchSpace, size_text


def sampler_seed(seed: int, first_number: int) -> int:
    """The optimizer's seed for a search whose next trial is number ``first_number``.

    A resumed search builds a new sampler. Seeded as at the start, it would draw the very
    configurations it drew before the interruption again (random search entirely, TPE's
    start-up trials, NSGA-II's first population), spending the remaining trials on
    duplicates. A resume therefore continues from its own stream: reproducible for the
    same seed and point of interruption, distinct from the draws already made. A fresh
    search keeps ``seed`` itself.
    """
    if first_number == 0:
        return seed
    return int(np.random.SeedSequence([seed, first_number]).generate_state(1)[0])


#: Looks up a reusable result: genotype -> {"trial_id": ..., "metrics": {...}} or None.
CacheLookup = Callable[[Genotype], dict[str, Any] | None]
#: The zero-cost proxies a trial of this genotype still has to score (those the store lacks).
ProxyLookup = Callable[[Genotype], list[str]]
#: Driver-side state a pickled searcher leaves behind (database lookups).
_LOOKUPS = ("_cache", "_proxies", "_lookup")


class _Recorder:
    """A trial-like object that replays stored parameters and records their distributions."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params
        self.distributions: dict[str, optuna.distributions.BaseDistribution] = {}

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        self.distributions[name] = optuna.distributions.CategoricalDistribution(list(choices))
        return self.params[name]

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        self.distributions[name] = optuna.distributions.IntDistribution(low, high, step=step, log=log)
        return self.params[name]

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        self.distributions[name] = optuna.distributions.FloatDistribution(low, high, step=step, log=log)
        return self.params[name]


@dataclass(frozen=True)
class Replay:
    """A configuration run before the optimizer's own: a named reference, or an interrupted trial again."""

    genotype_json: str
    reference: str | None = None  # a classic design's name
    number: int | None = None  # an interrupted trial runs again under its own number; None: the next
    params: dict[str, Any] | None = None  # the optimizer's parameters it was first drawn with

    @classmethod
    def rerun(cls, row: Mapping[str, Any]) -> Replay:
        """An interrupted trial (a ``finished_trials``-style row) again, exactly as first drawn."""
        return cls(row["genotype_json"], row.get("reference"), int(row["number"]), row.get("params"))

    @classmethod
    def references(cls, references: Mapping[str, Genotype]) -> list[Replay]:
        return [cls(genotype.to_json(), name) for name, genotype in references.items()]


class _NumberedSearch:
    """What both searchers share: numbering trials, replays, attaching reusable results, pickling.

    Ray pickles searchers (experiment state, searcher checkpoints); the cache and proxy lookups
    hold a database connection and stay behind: an unpickled searcher proposes without them.
    """

    def __init__(self, first_number: int, cache: CacheLookup | None = None, **searcher: Any) -> None:
        """``searcher``: the keyword arguments of the Ray Tune searcher this is mixed into."""
        super().__init__(**searcher)
        self._number = first_number  # the next trial's number in the search
        self._cache = cache
        self._proxies: ProxyLookup | None = None
        self._replays: list[Replay] = []  # still to run, in order
        self._replay_trials: dict[str, Replay] = {}  # Ray trial id -> the replay it runs

    def add_replays(self, replays: Sequence[Replay]) -> None:
        """Run these first, in order, before the optimizer's own suggestions."""
        self._replays.extend(replays)

    def score_proxies(self, lookup: ProxyLookup) -> None:
        """Each trial config names, under ``proxies``, the zero-cost proxies its trial scores at
        the cost step: ``lookup``'s answer, what the store does not hold yet."""
        self._proxies = lookup

    def add_references(self, references: dict[str, Genotype]) -> None:
        """Run these named designs first, before the optimizer's own suggestions."""
        self.add_replays(Replay.references(references))

    def _replay_config(self, trial_id: str) -> dict[str, Any] | None:
        if not self._replays:
            return None
        replay = self._replays.pop(0)
        self._replay_trials[trial_id] = replay
        config = self._trial_config(Genotype.from_json(replay.genotype_json), replay.params, replay.number)
        if replay.reference is not None:
            config["reference"] = replay.reference
        return config

    def _trial_config(
        self, genotype: Genotype, params: dict[str, Any] | None, number: int | None = None
    ) -> dict[str, Any]:
        if number is None:
            number = self._number
            self._number += 1
        config = {
            "genotype": genotype.to_json(),
            "number": number,
            "params": json.dumps(params) if params is not None else None,
        }
        if self._cache is not None:
            config["cached"] = self._cache(genotype)
        if self._proxies is not None:
            config["proxies"] = self._proxies(genotype)
        return config

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in _LOOKUPS}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        for name in _LOOKUPS:
            setattr(self, name, None)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as file:
            pickle.dump(self.__getstate__(), file)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as file:
            state = pickle.load(file)
        self.__dict__.update({k: v for k, v in state.items() if k not in _LOOKUPS})


class SpaceSearch(_NumberedSearch, OptunaSearch):
    """Ray Tune's OptunaSearch over a space's define-by-run ``suggest``."""

    def __init__(
        self,
        space: SearchSpace,
        sampler: optuna.samplers.BaseSampler,
        metrics: list[str],
        modes: list[str],
        first_number: int,
        cache: CacheLookup | None = None,
        train_defaults: dict[str, Any] | None = None,
    ) -> None:
        """``sampler`` carries the seed (``sampler_seed``; OptunaSearch warns when given both)."""
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # the search has its own view
        self.nas_space = space
        self._train_defaults = train_defaults or {}  # the recipe's values of searchable training knobs
        single = len(metrics) == 1
        super().__init__(
            first_number,
            cache,
            space=self._define_by_run,
            metric=metrics[0] if single else metrics,
            mode=modes[0] if single else modes,
            sampler=sampler,
        )

    def _define_by_run(self, trial: optuna.Trial) -> None:
        self.nas_space.suggest(trial)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        replay = self._replay_config(trial_id)
        if replay is not None:
            return replay
        params = super().suggest(trial_id)
        if params is None or params is Searcher.FINISHED:
            return params
        flat = flatten_dict(params, delimiter="/")
        return self._trial_config(self.nas_space.suggest(optuna.trial.FixedTrial(flat)), flat)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id not in self._replay_trials:  # Optuna never saw a replay's trial
            super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        replay = self._replay_trials.pop(trial_id, None)
        if replay is None:
            super().on_trial_complete(trial_id, result, error)
        elif result and not error:
            self._tell(replay, result)

    def _tell(self, replay: Replay, result: dict) -> bool:
        """A replay the space can draw becomes a finished trial of the study (a suggested point).

        An interrupted trial's stored parameters are told as they were drawn; a reference's
        are found from its genotype (``params_for``).
        """
        genotype = Genotype.from_json(replay.genotype_json)
        params = replay.params or self.nas_space.params_for(genotype, self._train_defaults)
        metrics = self._metric if isinstance(self._metric, list) else [self._metric]
        values = [result.get(metric) for metric in metrics]
        if params is None or any(v is None for v in values):
            return False
        recorder = _Recorder(params)
        try:
            self.nas_space.suggest(recorder)
        except KeyError:
            return False  # parameters of another space version: nothing to tell
        self._ot_study.add_trial(
            optuna.trial.create_trial(
                state=optuna.trial.TrialState.COMPLETE,
                values=[float(v) for v in values],
                params={k: params[k] for k in recorder.distributions},
                distributions=recorder.distributions,
            )
        )
        return True

    def warm_start(self, finished: list[dict[str, Any]], metrics: list[str]) -> int:
        """Tell the optimizer about trials a resumed search already finished."""
        told = 0
        directions = self._ot_study.directions
        for row in finished:
            if not row.get("params"):
                continue
            values = [_value(row, metric) for metric in metrics]
            recorder = _Recorder(row["params"])
            try:
                self.nas_space.suggest(recorder)
            except KeyError:
                continue  # parameters of another space version: nothing to replay
            state = optuna.trial.TrialState.COMPLETE
            if any(v is None for v in values):
                state, values = optuna.trial.TrialState.FAIL, None
            trial = optuna.trial.create_trial(
                state=state,
                values=values,
                params={k: row["params"][k] for k in recorder.distributions},
                distributions=recorder.distributions,
            )
            if values is not None and len(values) != len(directions):
                continue
            self._ot_study.add_trial(trial)
            told += 1
        return told


def _value(row: dict[str, Any], metric: str) -> float | None:
    key = {"val_miou": "best_miou", "params": "params_count"}.get(metric, metric)
    value = row.get(key)
    if row["status"] == "rejected_by_constraint" and metric == "val_miou":
        return 0.0
    return None if value is None else float(value)


class GridSearch(_NumberedSearch, Searcher):
    """Every architecture of a finite space once, in a fixed order (training knobs: the recipe's)."""

    def __init__(
        self,
        space: SearchSpace,
        metric: str,
        mode: str,
        first_number: int,
        done: set[str],
        cache: CacheLookup | None = None,
    ) -> None:
        super().__init__(first_number, cache, metric=metric, mode=mode)
        self._genotypes = [g for g in space.iter_genotypes(include_train=False) if g.trial_key not in done]
        self._next = 0

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        replay = self._replay_config(trial_id)
        if replay is not None:
            return replay
        if self._next >= len(self._genotypes):
            return Searcher.FINISHED
        self._next += 1
        return self._trial_config(self._genotypes[self._next - 1], None)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        pass


def grid_refusal(space: SearchSpace, strategy: str = "grid") -> str | None:
    """Why an exhaustive ``strategy`` cannot walk ``space`` (None: it can), from its size counted
    without enumerating."""
    size = space.size()
    if size <= ENUMERATION_LIMIT:
        return None
    others = f"another --strategy: {one_of(s for s in STRATEGIES if not STRATEGIES.get(s).exhaustive)}"
    if math.isinf(size):
        return (
            f"--strategy {strategy}: space {space.name} is {size_text(size)}: a grid cannot walk it; "
            f"use {others}"
        )
    return (
        f"--strategy {strategy}: space {space.name} has {size_text(size)} architectures, more than the "
        f"{ENUMERATION_LIMIT:,} a grid walks; use a smaller space (fewer choices; nasfcn spaces show "
        f"counts them) or {others}"
    )


#: Looks up a reusable result for one planned run: (genotype, dataset, recipe) -> result or None.
RunLookup = Callable[[Genotype, str, dict[str, Any]], dict[str, Any] | None]


@dataclass(frozen=True)
class PlannedRun:
    """One run of a benchmark: this network on this dataset with this seed."""

    genotype: Genotype
    data: str
    seed: int
    reference: str | None = None


class PlanSearch(_NumberedSearch, Searcher):
    """A fixed list of runs, each once and in order (benchmarks: no optimizer, no early stop)."""

    def __init__(
        self,
        runs: Sequence[PlannedRun],
        metric: str,
        recipe: dict[str, Any],
        first_number: int,
        lookup: RunLookup | None = None,
    ) -> None:
        super().__init__(first_number, None, metric=metric, mode="max")
        self._runs = list(runs)
        self._recipe = recipe
        self._next = 0
        self._lookup = lookup

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self._next >= len(self._runs):
            return Searcher.FINISHED
        run = self._runs[self._next]
        self._next += 1
        config = self._trial_config(run.genotype, None)
        config["data"] = run.data
        config["recipe_overrides"] = {"seed": run.seed}
        if run.reference is not None:
            config["reference"] = run.reference
        if self._lookup is not None:
            config["cached"] = self._lookup(run.genotype, run.data, {**self._recipe, "seed": run.seed})
        return config

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        pass
