"""A learned surrogate: gradient-boosted trees that predict a genotype's val mIoU from its knobs.

Features (``KnobEncoder``): one column per searched knob, in the space's suggestion order
(a per-stage knob: one column per stage, up to the deepest stage count the space allows).
A numeric knob is its value (the log for a log-scaled range), so trees split on "kernel
<= 3"; a categorical knob is the index of its value in the YAML's list of choices (ordinal
codes: trees split them into groups of neighbouring choices, enough for the 2-7 choices
of the shipped spaces); a knob the genotype leaves inactive is NaN, which both tree
libraries route as missing. Callers may append columns (proxies, the first ASHA rung's
mIoU): NaN where unknown.

``Surrogate``: an ensemble of ``members`` models, each fitted on a bootstrap resample
drawn from ``seed``; the prediction is the members' mean, the uncertainty their standard
deviation. Deterministic for a seed. The trees are kept small (8 leaves, 2 samples per
leaf) because a search fits them on 5 to 100 architectures, where the libraries'
defaults (20 samples per leaf) would never split.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nasfcn.genotype import Genotype
from nasfcn.space import SearchSpace

#: The tree libraries a surrogate can use. LightGBM is the default by measurement
#: (benchmarks/surrogate_fit.py, fcn_bench, 20/50/100 training architectures): the same rank
#: correlation as scikit-learn's HistGradientBoosting (within 0.01), fits 2-6x faster on one
#: thread, and ~70x faster where HistGradientBoosting's OpenMP threads meet a busy machine.
BACKENDS = ("hist", "lightgbm")
MEMBERS = 5  # ensemble size: the spread of 5 bootstrap fits is the uncertainty estimate
TREES = 100
LEAVES = 8
MIN_LEAF = 2
LEARNING_RATE = 0.1


class KnobEncoder:
    """Genotype -> one row of knob features (see the module docstring); rows are cached by trial key."""

    def __init__(self, space: SearchSpace, train_defaults: Mapping[str, Any] | None = None) -> None:
        self.space = space
        self._defaults = dict(train_defaults or {})
        stages = space.knobs["encoder.stages"].values() if "encoder.stages" in space.knobs else None
        deepest = max(stages) if stages else 1
        self._knobs = {k.param: k for k in space.searched}
        self.columns: tuple[str, ...] = tuple(
            name
            for knob in space.searched
            for name in ([f"{knob.param}/{i}" for i in range(deepest)] if knob.per_stage else [knob.param])
        )
        self._rows: dict[str, np.ndarray] = {}

    def row(self, genotype: Genotype) -> np.ndarray:
        """The genotype's features; all NaN for a genotype the space cannot draw (a reference design)."""
        key = genotype.trial_key
        if key not in self._rows:
            params = self.space.params_for(genotype, self._defaults) or {}
            self._rows[key] = np.asarray([self._code(name, params.get(name)) for name in self.columns])
        return self._rows[key]

    def matrix(self, genotypes: Sequence[Genotype]) -> np.ndarray:
        if not genotypes:
            return np.empty((0, len(self.columns)))
        return np.vstack([self.row(g) for g in genotypes])

    def _code(self, name: str, value: Any) -> float:
        if value is None:
            return math.nan
        knob = self._knobs.get(name) or self._knobs[name.rsplit("/", 1)[0]]
        if knob.mode == "choices" and not all(_numeric(c) for c in knob.choices):
            return float(list(knob.choices).index(value))
        return math.log(float(value)) if knob.log else float(value)


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Surrogate:
    """A seeded ensemble of gradient-boosted tree regressors: ``fit(X, y)``, then ``predict(X)``."""

    def __init__(self, backend: str = "lightgbm", members: int = MEMBERS, seed: int = 0) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"surrogate backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if members < 1:
            raise ValueError(f"a surrogate needs >= 1 members, got {members}")
        self.backend, self.members, self.seed = backend, members, seed
        self._models: list[Any] = []
        self._constant: float | None = None

    def fit(self, x: np.ndarray, y: np.ndarray) -> Surrogate:
        """Fit every member on its own bootstrap resample of the rows (all rows when there is one member)."""
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if len(y) == 0:
            raise ValueError("a surrogate needs at least one observation to fit")
        self._models, self._constant = [], None
        if len(y) < 2 * MIN_LEAF or np.ptp(y) == 0:
            self._constant = float(np.mean(y))  # too few to split: predict the mean, no spread
            return self
        for member in range(self.members):
            rng = np.random.default_rng([self.seed, member])
            rows = rng.integers(len(y), size=len(y)) if self.members > 1 else np.arange(len(y))
            self._models.append(self._model(self.seed + member).fit(x[rows], y[rows]))
        return self

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean, standard deviation over the members) for every row of ``x``."""
        x = np.asarray(x, dtype=np.float64)
        if self._constant is not None:
            return np.full(len(x), self._constant), np.zeros(len(x))
        if not self._models:
            raise ValueError("fit the surrogate before predicting")
        predictions = np.vstack([model.predict(x) for model in self._models])
        return predictions.mean(axis=0), predictions.std(axis=0)

    def _model(self, seed: int) -> Any:
        if self.backend == "lightgbm":
            import lightgbm

            return lightgbm.LGBMRegressor(
                n_estimators=TREES,
                learning_rate=LEARNING_RATE,
                num_leaves=LEAVES,
                min_child_samples=MIN_LEAF,
                min_data_in_bin=1,
                random_state=seed,
                deterministic=True,
                n_jobs=1,
                verbose=-1,
            )
        from sklearn.ensemble import HistGradientBoostingRegressor

        return HistGradientBoostingRegressor(
            max_iter=TREES,
            learning_rate=LEARNING_RATE,
            max_leaf_nodes=LEAVES,
            min_samples_leaf=MIN_LEAF,
            early_stopping=False,
            random_state=seed,
        )
