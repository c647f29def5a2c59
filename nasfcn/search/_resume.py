"""What a resume keeps and what it may change (``nasfcn search --resume``, ``nasfcn benchmark --resume``).

A resume continues the stored search, so its leaderboard only ever holds comparable
results. Settings that decide what a result means (data, image size, samples, epochs,
recipe, space, strategy, scheduler, seed, constraints, ...) are the stored ones; giving
one with another value is refused, naming the option, the stored value and the given one.
Settings that only say how much more to run, or where (trials, time budget, resources,
Ray address, storage path, cache), may change: the new values are recorded with the
search, so the next resume continues with them.

Which settings count as given: the CLI passes the options typed on the command line as
``explicit``. A library caller may do the same; without ``explicit``, the fields whose
values differ from the config class's defaults count as given (a required field: when
it is not empty), and every other field takes its stored value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, dataclass, fields, replace
from typing import Any

from nasfcn.recipe import TrainRecipe
from nasfcn.search._execution import EXECUTION, Execution, flat_config

RECIPE = "recipe"
#: Fields that hold a dataclass of settings, named ``section.field`` in rules and ``explicit``.
_SECTIONS = (RECIPE, EXECUTION)
#: Recipe fields that mirror a config's own ``epochs`` and ``seed``: compared there, not here.
_MIRRORED = ("epochs", "seed")


@dataclass(frozen=True)
class ResumeRule:
    """Which fields of a config a resume keeps, which it may change, and their option names."""

    kept: tuple[str, ...]  # what results mean: a given value must equal the stored one
    adjustable: tuple[str, ...]  # how much more to run and where: a given value replaces the stored one
    options: Mapping[str, str]  # field (``recipe.lr`` for a recipe field) -> the option naming it
    noun: str = "search"

    def option(self, name: str) -> str:
        if name in self.options:
            return self.options[name]
        if name.startswith(f"{RECIPE}."):
            return name
        return f"--{name.rpartition('.')[2].replace('_', '-')}"  # execution.x: the CLI's --x


@dataclass(frozen=True)
class Merged:
    """A config's fields after a resume, and what the caller asked differently."""

    values: dict[str, Any]  # field -> value, for ``dataclasses.replace``
    conflicts: tuple[str, ...]  # a kept setting given with another value
    changes: tuple[str, ...]  # an adjustable setting given with another value


def given_fields(config: Any) -> frozenset[str]:
    """The fields the caller set: ``config.explicit``, else those that differ from the defaults."""
    if config.explicit is not None:
        return frozenset(config.explicit)
    given: set[str] = set()
    for spec in fields(config):
        value = getattr(config, spec.name)
        default = _default(spec)
        if spec.name in _SECTIONS:
            defaults = _section_fields(default)
            given.update(
                f"{spec.name}.{name}"
                for name, field_value in _section_fields(value).items()
                if field_value != defaults.get(name)
            )
        elif (value != default) if default is not MISSING else bool(value):
            given.add(spec.name)
    return frozenset(given)


def check_explicit(config: Any) -> list[str]:
    """Names in ``config.explicit`` that are no field: a typo would silently count as not given."""
    if config.explicit is None:
        return []
    known = {spec.name for spec in fields(config)}
    known |= {f"{RECIPE}.{name}" for name in _recipe_names()}
    known |= {f"{EXECUTION}.{spec.name}" for spec in fields(Execution)}
    unknown = sorted(set(config.explicit) - known)
    return [f"explicit names unknown fields {', '.join(unknown)}"] if unknown else []


#: What a config stored before a setting was recorded trained with: that version's default.
#: Scale jitter (0.75-1.25) was on for every search, benchmark and table until it became the
#: ``--scale-jitter`` setting, off by default; their resumes keep training with it. Searches
#: before ``--final-share`` had no final runs; their resumes add none.
UNRECORDED_BEFORE: dict[str, Any] = {"scale_range": [0.75, 1.25], "final_share": 0.0}


def merge_stored(
    config: Any,
    stored: Mapping[str, Any],
    rule: ResumeRule,
    given: frozenset[str],
    normalize: Mapping[str, Callable[[Any], Any]] | None = None,
) -> Merged:
    """Stored values for what was not given; given kept values must equal the stored ones.

    ``stored`` is the config as recorded with the search (JSON: lists for tuples; execution
    settings nested or, recorded by an older version, at the top level); a field it lacks
    takes the value it had before it was recorded (``UNRECORDED_BEFORE``), else keeps the
    value of ``config``. ``normalize`` maps a field to the function that puts a
    given value in stored form. ``execution.x`` in a rule is the field ``x`` of ``config.execution``.
    """
    normalize = normalize or {}
    flat = {**UNRECORDED_BEFORE, **flat_config(stored)}
    values: dict[str, Any] = {}
    execution: dict[str, Any] = {}
    conflicts: list[str] = []
    changes: list[str] = []
    for path in (*rule.kept, *rule.adjustable):
        section, _, name = path.rpartition(".")
        if path == RECIPE or name not in flat:
            continue
        current = getattr(config.execution if section == EXECUTION else config, name)
        saved = _decode(current, flat[name])
        if path in given:
            value = normalize.get(path, lambda v: v)(current)
            _compare(rule, path, value, saved, path in rule.kept, conflicts, changes)
            saved = value
        (execution if section == EXECUTION else values)[name] = saved
    if execution:
        values[EXECUTION] = replace(config.execution, **execution)
    if RECIPE in (*rule.kept, *rule.adjustable) and isinstance(stored.get(RECIPE), Mapping):
        recipe = _merge_recipe(config.recipe, stored[RECIPE], rule, given, conflicts, changes)
        values[RECIPE] = recipe
    return Merged(values, tuple(conflicts), tuple(changes))


def conflict_message(conflicts: Iterable[str], noun: str) -> str:
    """One line: every refused setting, then why and what to do instead."""
    listed = list(conflicts)
    them = "it" if len(listed) == 1 else "them"
    return (
        f"{'; '.join(listed)}: a resumed {noun} keeps its settings; "
        f"start a new {noun} with another --name to change {them}"
    )


def show(value: Any) -> str:
    """A setting as a user would type it: ``64``, ``0.003``, ``miou,latency_ms``, ``none``, ``on``."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}" if math.isfinite(value) else str(value)
    if isinstance(value, (tuple, list)):
        return ",".join(map(show, value)) if value else "none"
    return str(value)


def _compare(
    rule: ResumeRule,
    name: str,
    value: Any,
    saved: Any,
    kept: bool,
    conflicts: list[str],
    changes: list[str],
) -> None:
    if value == saved:
        return
    option = rule.option(name)
    if kept:
        conflicts.append(f"{option} {show(value)} differs from the stored {show(saved)}")
    else:
        changes.append(f"{option} {show(value)} (stored {show(saved)})")


def _merge_recipe(
    recipe: TrainRecipe,
    stored: Mapping[str, Any],
    rule: ResumeRule,
    given: frozenset[str],
    conflicts: list[str],
    changes: list[str],
) -> TrainRecipe:
    kept = RECIPE in rule.kept
    merged = {}
    for name, value in _recipe_fields(recipe).items():
        if name not in stored:
            continue
        key = f"{RECIPE}.{name}"
        if key in given:
            _compare(rule, key, value, stored[name], kept, conflicts, changes)
            merged[name] = value
        else:
            merged[name] = stored[name]
    return replace(recipe, **merged)


def _recipe_names() -> list[str]:
    return [spec.name for spec in fields(TrainRecipe) if spec.name not in _MIRRORED]


def _recipe_fields(recipe: TrainRecipe) -> dict[str, Any]:
    return {name: getattr(recipe, name) for name in _recipe_names()}


def _section_fields(section: Any) -> dict[str, Any]:
    """A recipe's or an execution's fields that a resume compares."""
    if isinstance(section, TrainRecipe):
        return _recipe_fields(section)
    return {spec.name: getattr(section, spec.name) for spec in fields(section)}


def _default(spec: Any) -> Any:
    if spec.default is not MISSING:
        return spec.default
    if spec.default_factory is not MISSING:
        return spec.default_factory()
    return MISSING


def _decode(current: Any, stored: Any) -> Any:
    """A stored JSON value in the field's own type (tuples are stored as lists)."""
    if isinstance(current, tuple) and isinstance(stored, list):
        return tuple(stored)
    return stored
