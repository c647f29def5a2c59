"""Where candidates come from: Optuna behind Ray Tune (random, TPE, NSGA-II) or a grid.

Both searchers run in the driver. Each suggestion becomes a trial config holding the
genotype JSON (workers need no space file), the trial's number in the search, the
optimizer's parameters (so a resumed search can replay them), and — when the database
already holds a result for the same network, training knobs, dataset and recipe — that
result, so the trial reports it instead of training.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch
from ray.tune.utils import flatten_dict

from nasfcn.genotype import Genotype
from nasfcn.registry import Registry
from nasfcn.space import SearchSpace

SAMPLERS: Registry[Callable[[int, int], optuna.samplers.BaseSampler]] = Registry("search strategy")
SAMPLERS.add("random", lambda seed, objectives: optuna.samplers.RandomSampler(seed=seed))
SAMPLERS.add(
    "tpe",
    lambda seed, objectives: optuna.samplers.TPESampler(seed=seed, n_startup_trials=4),
)
SAMPLERS.add("nsga2", lambda seed, objectives: optuna.samplers.NSGAIISampler(seed=seed, population_size=8))


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


class _NumberedSearch:
    """What both searchers share: numbering trials, attaching reusable results, pickling.

    Ray pickles searchers (experiment state, searcher checkpoints); the cache lookup holds a
    database connection and stays behind: an unpickled searcher proposes without it.
    """

    _cache: CacheLookup | None
    _number: int
    _references: list[tuple[str, str]]  # (name, genotype JSON) still to run, in order
    _reference_trials: dict[str, str]  # Ray trial id -> genotype JSON of a running reference

    def add_references(self, references: dict[str, Genotype]) -> None:
        """Run these named designs first, before the optimizer's own suggestions."""
        self._references = [(name, genotype.to_json()) for name, genotype in references.items()]
        self._reference_trials = {}

    def _reference_config(self, trial_id: str) -> dict[str, Any] | None:
        pending = getattr(self, "_references", None)
        if not pending:
            return None
        name, genotype_json = pending.pop(0)
        self._reference_trials[trial_id] = genotype_json
        config = self._trial_config(Genotype.from_json(genotype_json), None)
        config["reference"] = name
        return config

    def _trial_config(self, genotype: Genotype, params: dict[str, Any] | None) -> dict[str, Any]:
        config = {
            "genotype": genotype.to_json(),
            "number": self._number,
            "params": json.dumps(params) if params is not None else None,
        }
        self._number += 1
        if self._cache is not None:
            config["cached"] = self._cache(genotype)
        return config

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_cache"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._cache = None

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as file:
            pickle.dump(self.__getstate__(), file)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as file:
            state = pickle.load(file)
        self.__dict__.update({k: v for k, v in state.items() if k != "_cache"})


class SpaceSearch(_NumberedSearch, OptunaSearch):
    """Ray Tune's OptunaSearch over a space's define-by-run ``suggest``."""

    def __init__(
        self,
        space: SearchSpace,
        strategy: str,
        metrics: list[str],
        modes: list[str],
        seed: int,
        first_number: int,
        cache: CacheLookup | None = None,
        train_defaults: dict[str, Any] | None = None,
    ) -> None:
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # the search has its own view
        self.nas_space = space
        self._number = first_number
        self._cache = cache
        self._train_defaults = train_defaults or {}  # the recipe's values of searchable training knobs
        self._references, self._reference_trials = [], {}
        sampler = SAMPLERS.get(strategy)(sampler_seed(seed, first_number), len(metrics))
        single = len(metrics) == 1
        super().__init__(
            space=self._define_by_run,
            metric=metrics[0] if single else metrics,
            mode=modes[0] if single else modes,
            sampler=sampler,  # carries the seed (OptunaSearch warns when given both)
        )

    def _define_by_run(self, trial: optuna.Trial) -> None:
        self.nas_space.suggest(trial)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        reference = self._reference_config(trial_id)
        if reference is not None:
            return reference
        params = super().suggest(trial_id)
        if params is None or params is Searcher.FINISHED:
            return params
        flat = flatten_dict(params, delimiter="/")
        return self._trial_config(self.nas_space.suggest(optuna.trial.FixedTrial(flat)), flat)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id not in self._reference_trials:  # Optuna never saw a reference's trial
            super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        genotype_json = self._reference_trials.pop(trial_id, None)
        if genotype_json is None:
            super().on_trial_complete(trial_id, result, error)
        elif result and not error:
            self._tell(Genotype.from_json(genotype_json), result)

    def _tell(self, genotype: Genotype, result: dict) -> bool:
        """A reference the space can draw becomes a finished trial of the study (a suggested point)."""
        params = self.nas_space.params_for(genotype, self._train_defaults)
        metrics = self._metric if isinstance(self._metric, list) else [self._metric]
        values = [result.get(metric) for metric in metrics]
        if params is None or any(v is None for v in values):
            return False
        recorder = _Recorder(params)
        self.nas_space.suggest(recorder)
        self._ot_study.add_trial(
            optuna.trial.create_trial(
                state=optuna.trial.TrialState.COMPLETE,
                values=[float(v) for v in values],
                params=params,
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
        super().__init__(metric=metric, mode=mode)
        self._genotypes = [g for g in space.iter_genotypes(include_train=False) if g.trial_key not in done]
        self._next = 0
        self._number = first_number
        self._cache = cache
        self._references, self._reference_trials = [], {}

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        reference = self._reference_config(trial_id)
        if reference is not None:
            return reference
        if self._next >= len(self._genotypes):
            return Searcher.FINISHED
        self._next += 1
        return self._trial_config(self._genotypes[self._next - 1], None)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        pass


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
        super().__init__(metric=metric, mode="max")
        self._runs = list(runs)
        self._recipe = recipe
        self._next = 0
        self._number = first_number
        self._cache = None
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

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in super().__getstate__().items() if k != "_lookup"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._lookup = None
