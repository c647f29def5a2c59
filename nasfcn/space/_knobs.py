"""Knobs as written in a space, and the part of a trial they draw from."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from nasfcn.space._catalog import KnobDef
from nasfcn.space._conditions import Condition
from nasfcn.space._errors import _show


class TrialLike(Protocol):
    """The part of ``optuna.Trial`` a space uses."""

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any: ...

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int: ...

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float: ...


@dataclass(frozen=True)
class Knob:
    """One knob of one space: fixed, choices, or a range; maybe conditional, maybe per stage."""

    definition: KnobDef
    mode: str = "fixed"  # fixed | choices | int | float
    value: Any = None  # when fixed
    choices: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    when: Condition | None = None
    per_stage: bool = False
    declared: bool = True  # written in the file (otherwise a default)

    @property
    def path(self) -> str:
        return self.definition.path

    @property
    def param(self) -> str:
        return self.path.replace(".", "/")

    @property
    def searched(self) -> bool:
        return self.mode != "fixed"

    def values(self) -> tuple[Any, ...] | None:
        """Every value this knob can take, or None for a continuous range."""
        if self.mode == "fixed":
            return (self.value,)
        if self.mode == "choices":
            return self.choices
        low, high = self.bounds()
        if self.mode == "int":
            step = 1 if self.log else int(self.step or 1)
            return tuple(range(int(low), int(high) + 1, step))
        if self.step is not None:
            count = math.floor((high - low) / self.step + 1e-9) + 1
            return tuple(low + i * self.step for i in range(count))
        return None

    def bounds(self) -> tuple[float, float]:
        if self.low is None or self.high is None:
            raise ValueError(f"{self.path} is {self.mode}, not a range")
        return self.low, self.high

    def draw(self, trial: TrialLike, name: str) -> Any:
        if self.mode == "fixed":
            return self.value
        if self.mode == "choices":
            return trial.suggest_categorical(name, list(self.choices))
        low, high = self.bounds()
        if self.mode == "int":
            return trial.suggest_int(name, int(low), int(high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(name, low, high, step=self.step, log=self.log)

    def describe(self) -> str:
        if self.mode == "fixed":
            text = _show(self.value)
        elif self.mode == "choices":
            text = "{" + ", ".join(_show(c) for c in self.choices) + "}"
        else:
            text = f"{self.mode} [{_show(self.low)}, {_show(self.high)}]"
            if self.step is not None:
                text += f" step {_show(self.step)}"
            if self.log:
                text += " log"
        if self.per_stage:
            text += " per stage"
        return text
