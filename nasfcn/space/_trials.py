"""Trials that are not Optuna's: seeded random sampling, genotype replay (``params_for``)
and exhaustive enumeration (an odometer over define-by-run decisions)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from nasfcn.space._knobs import TrialLike


class RandomTrial:
    """Uniform (or log-uniform) draws from a seeded generator."""

    def __init__(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)
        self.params: dict[str, Any] = {}

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        value = choices[int(self._rng.integers(len(choices)))]
        self.params[name] = value
        return value

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        if log:
            value = round(math.exp(self._rng.uniform(math.log(low), math.log(high + 1) - 1e-9)))
            value = min(max(value, low), high)
        else:
            value = low + step * int(self._rng.integers((high - low) // step + 1))
        self.params[name] = value
        return value

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        if step is not None:
            value = low + step * int(self._rng.integers(int((high - low) / step + 1e-9) + 1))
        elif log:
            value = float(math.exp(self._rng.uniform(math.log(low), math.log(high))))
        else:
            value = float(self._rng.uniform(low, high))
        self.params[name] = value
        return value


class _NotInSpaceError(Exception):
    pass


class _GenotypeTrial:
    """Answers each suggestion with the genotype's own value, if the space offers it."""

    def __init__(self, genotype: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
        self.genotype = genotype
        self.defaults = defaults
        self.params: dict[str, Any] = {}

    def _value(self, name: str) -> Any:
        parts = name.split("/")
        if parts[0] == "train":  # a knob the genotype leaves to the recipe takes the recipe's value
            value: Any = {**self.defaults, **self.genotype.get("train", {})}.get(parts[1])
            if value is None:
                raise _NotInSpaceError(name)
            return value
        value = self.genotype
        for part in parts:
            if isinstance(value, list):
                value = value[int(part)]
            elif isinstance(value, Mapping) and part in value:
                value = value[part]
            else:
                raise _NotInSpaceError(name)
        if isinstance(value, list):  # one value for every stage: the stages must agree
            if len(set(value)) != 1:
                raise _NotInSpaceError(name)
            value = value[0]
        return value

    def _take(self, name: str, value: Any) -> Any:
        self.params[name] = value
        return value

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        value = self._value(name)
        if value not in list(choices):
            raise _NotInSpaceError(name)
        return self._take(name, value)

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        value = self._value(name)
        if not (isinstance(value, int) and low <= value <= high and (log or (value - low) % step == 0)):
            raise _NotInSpaceError(name)
        return self._take(name, value)

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        value = self._value(name)
        if not (isinstance(value, (int, float)) and low <= value <= high):
            raise _NotInSpaceError(name)
        return self._take(name, float(value))


class _ExhaustedError(Exception):
    pass


class _OdometerTrial:
    """Replays a prefix of decisions and takes the first option after it, recording arities."""

    def __init__(self, prefix: list[int]) -> None:
        self.prefix = prefix
        self.decisions: list[int] = []
        self.arities: list[int] = []

    def _pick(self, options: Sequence[Any]) -> Any:
        position = len(self.decisions)
        index = self.prefix[position] if position < len(self.prefix) else 0
        self.decisions.append(index)
        self.arities.append(len(options))
        return options[index]

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return self._pick(list(choices))

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        return self._pick(list(range(low, high + 1, 1 if log else step)))

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        if step is None:
            raise _ExhaustedError(f"{name} is a continuous range: the space cannot be enumerated")
        count = int((high - low) / step + 1e-9) + 1
        return self._pick([low + i * step for i in range(count)])


def _odometer(draw: Callable[[TrialLike], dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Depth-first over every sequence of define-by-run decisions."""
    prefix: list[int] = []
    while True:
        trial = _OdometerTrial(prefix)
        try:
            yield draw(trial)
        except _ExhaustedError as err:
            raise ValueError(str(err)) from None
        decisions, arities = trial.decisions, trial.arities
        while decisions and decisions[-1] + 1 >= arities[-1]:
            decisions.pop()
            arities.pop()
        if not decisions:
            return
        prefix = [*decisions[:-1], decisions[-1] + 1]
