"""The search-space language: YAML in, a validated ``SearchSpace`` out.

A space file sets knobs of the FCN family (see ``search_spaces/README.md``). Each knob is
a fixed value, a list of ``choices`` or an ``int``/``float`` range (``log: true`` for a
log scale), may be active only ``when`` a condition on other knobs holds, and per-stage
knobs may be chosen separately for every stage (``per_stage: true``).

``SearchSpace.suggest(trial)`` is define-by-run and only calls ``trial.suggest_*``:
the same code drives Optuna, ``sample(seed)``, ``FixedTrial`` replays and exhaustive
enumeration. Parameter names are ``/`` paths that match the genotype's fields.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import yaml

from nasfcn.genotype import AttentionGene, EncoderGene, Genotype, HeadGene, TrainGene
from nasfcn.registry import did_you_mean

# ---------------------------------------------------------------------------------------
# The knob catalogue: every knob the language knows, in suggestion order.
# ---------------------------------------------------------------------------------------

Values = Callable[[], tuple[Any, ...]]


@dataclass(frozen=True)
class _RegistryNames:
    """The valid names of one of the model's registries, looked up when asked (picklable)."""

    attr: str

    def __call__(self) -> tuple[str, ...]:
        from nasfcn import model  # the model's registries are the source of valid names

        return getattr(model, self.attr).names()


def _registry_names(attr: str) -> Values:
    return _RegistryNames(attr)


@dataclass(frozen=True)
class KnobDef:
    """What a knob may be: its type, allowed values or bounds, default and doc."""

    path: str
    type: str  # int | float | str | bool
    doc: str
    default: Any = None
    allowed: tuple[Any, ...] | Values | None = None  # finite allowed set
    low: float | None = None  # inclusive bounds for int/float knobs
    high: float | None = None
    nullable: bool = False  # null is a valid value (e.g. no width cap)
    per_stage: bool = False  # one value per encoder stage
    train: bool = False  # a training knob: not part of the architecture

    def allowed_values(self) -> tuple[Any, ...] | None:
        allowed = self.allowed() if callable(self.allowed) else self.allowed
        return None if allowed is None else tuple(allowed)

    def describe_allowed(self) -> str:
        allowed = self.allowed_values()
        if allowed is not None:
            return ", ".join(_show(v) for v in allowed) + (", null" if self.nullable else "")
        text = f"{self.type} in [{_show(self.low)}, {_show(self.high)}]"
        return text + " or null" if self.nullable else text


MAX_STAGES = 8
#: The most distinct genotypes ``iter_genotypes`` walks (a grid search's limit).
ENUMERATION_LIMIT = 1_000_000

CATALOG: tuple[KnobDef, ...] = (
    KnobDef("encoder.stages", "int", "number of /2 downsampling stages", 4, low=1, high=MAX_STAGES),
    KnobDef("skip", "str", "skip path", "none", _registry_names("SKIPS")),
    KnobDef("upsample", "str", "upsampling", "bilinear", _registry_names("UPSAMPLERS")),
    KnobDef("encoder.downsample", "str", "downsampling", "maxpool", _registry_names("DOWNSAMPLERS")),
    KnobDef("encoder.width", "int", "channels of the first stage", 16, low=1, high=2048),
    KnobDef("encoder.max_width", "int", "cap on channels", None, low=1, high=8192, nullable=True),
    KnobDef("encoder.blocks_per_stage", "int", "conv blocks per stage", 1, low=1, high=8, per_stage=True),
    KnobDef("encoder.kernel_size", "int", "conv kernel size", 3, (1, 3, 5, 7), per_stage=True),
    KnobDef("encoder.dilation", "int", "conv dilation", 1, low=1, high=8, per_stage=True),
    KnobDef("encoder.norm", "str", "normalization", "batch", _registry_names("NORMS")),
    KnobDef("encoder.activation", "str", "activation", "relu", _registry_names("ACTIVATIONS")),
    KnobDef("attention.type", "str", "attention block", "none", _registry_names("ATTENTION")),
    KnobDef("attention.where", "str", "attention placement", "decoder", ("encoder", "decoder", "both")),
    KnobDef("head.kernel_size", "int", "classifier kernel", 1, (1, 3)),
    KnobDef("head.extra_conv", "bool", "extra conv block before the classifier", False, (False, True)),
    KnobDef("head.extra_kernel_size", "int", "kernel of the extra conv block", 3, (1, 3, 5, 7)),
    KnobDef("train.lr", "float", "learning rate", None, low=1e-7, high=10.0, train=True),
    KnobDef("train.weight_decay", "float", "weight decay", None, low=0.0, high=1.0, train=True),
    KnobDef("train.batch_size", "int", "batch size", None, low=1, high=4096, train=True),
    KnobDef("train.optimizer", "str", "optimizer", None, ("sgd", "adamw"), train=True),
)
KNOBS: dict[str, KnobDef] = {k.path: k for k in CATALOG}

SECTIONS = ("input", "encoder", "attention", "head", "train")
TOP_LEVEL_KNOBS = ("skip", "upsample")
TOP_LEVEL_KEYS = ("name", "description", *SECTIONS, *TOP_LEVEL_KNOBS)
INPUT_KEYS = {"channels": (1, 64, 3), "min_size": (1, 8192, 32)}  # key: (low, high, default)
SPEC_FORMS = ("value", "choices", "int", "float", "uniform", "log_uniform")
SPEC_OPTIONS = ("step", "log", "when", "per_stage")

#: Knobs that are only active when another knob says so, whatever the file writes.
INTRINSIC_CONDITIONS: dict[str, Callable[[Mapping[str, Any]], bool]] = {
    "attention.where": lambda v: v["attention.type"] != "none",
    "head.extra_kernel_size": lambda v: v["head.extra_conv"] is True,
}
INTRINSIC_TEXT = {
    "attention.where": "attention.type != none",
    "head.extra_kernel_size": "head.extra_conv == true",
    "encoder.downsample": "upsample != max_unpool (else maxpool)",
}
INTRINSIC_DEPENDS = {
    "attention.where": ("attention.type",),
    "head.extra_kernel_size": ("head.extra_conv",),
    "encoder.downsample": ("upsample",),
}


def _needs_indices(upsample: str) -> bool:
    from nasfcn.model import UPSAMPLERS

    return upsample in UPSAMPLERS and UPSAMPLERS.get(upsample).needs_indices


def _keeps_indices(downsample: str) -> bool:
    from nasfcn.model import DOWNSAMPLERS

    return downsample in DOWNSAMPLERS and DOWNSAMPLERS.get(downsample).keeps_indices


def _min_stages(skip: str) -> int:
    from nasfcn.model import SKIPS

    return SKIPS.get(skip).min_stages if skip in SKIPS else 1


# ---------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpaceIssue:
    path: str  # dotted field path, e.g. encoder.kernel_size.choices[2]
    message: str


class SpaceError(ValueError):
    """Everything wrong with one space file, reported at once."""

    def __init__(self, source: str, issues: Sequence[SpaceIssue]) -> None:
        self.source = source
        self.issues = tuple(issues)
        super().__init__(str(self))

    def __str__(self) -> str:
        count = len(self.issues)
        lines = [f"{self.source}: {count} error{'s' if count != 1 else ''} in the search space"]
        lines += [f"  {i.path}: {i.message}" if i.path else f"  {i.message}" for i in self.issues]
        return "\n".join(lines)


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ---------------------------------------------------------------------------------------
# Conditions: a tiny language, parsed (never eval'ed)
# ---------------------------------------------------------------------------------------

_CLAUSE = re.compile(r"^\s*(?P<path>[A-Za-z_][\w.]*)\s*(?P<op>==|!=|not\s+in|in)\s*(?P<value>.+?)\s*$")


@dataclass(frozen=True)
class Clause:
    path: str
    op: str  # == | != | in | not in
    values: tuple[Any, ...]

    def holds(self, values: Mapping[str, Any]) -> bool:
        inside = values[self.path] in self.values
        return inside if self.op in ("==", "in") else not inside


@dataclass(frozen=True)
class Condition:
    """``a.b == x``, ``a.b != x``, ``a.b in [x, y]``, ``a.b not in [x]``, joined by ``and``."""

    text: str
    clauses: tuple[Clause, ...]

    def holds(self, values: Mapping[str, Any]) -> bool:
        return all(c.holds(values) for c in self.clauses)

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(c.path for c in self.clauses)


def parse_condition(text: str) -> Condition:
    """Parse a ``when:`` expression; raises ValueError with a hint on bad syntax."""
    clauses = []
    for part in re.split(r"\s+and\s+", text.strip()):
        match = _CLAUSE.match(part)
        if not match:
            raise ValueError(
                f"cannot parse condition {part!r}; write e.g. 'attention.type != none', "
                "'skip in [fcn8s, unet_concat]', joined with 'and'"
            )
        op = re.sub(r"\s+", " ", match["op"])
        raw = match["value"]
        if op in ("in", "not in"):
            if not (raw.startswith("[") and raw.endswith("]")):
                raise ValueError(f"'{op}' needs a list, e.g. [a, b]; got {raw!r}")
            values = yaml.safe_load(raw)
        else:
            values = [yaml.safe_load(raw)]
        if not isinstance(values, list) or not values:
            raise ValueError(f"condition {part!r} compares with an empty or malformed value")
        clauses.append(Clause(match["path"], op, tuple(values)))
    return Condition(text, tuple(clauses))


# ---------------------------------------------------------------------------------------
# Knobs as written in a space
# ---------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------
# The space
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchSpace:
    """A validated space of FCN architectures (and optional training knobs)."""

    name: str
    knobs: Mapping[str, Knob]
    order: tuple[str, ...]  # suggestion order (dependencies first)
    in_channels: int = 3
    min_size: int = 32
    description: str = ""
    source: str = "<memory>"
    text: str = field(default="", repr=False)  # the YAML as written, for the database

    # -- define-by-run -----------------------------------------------------------------
    def suggest(self, trial: TrialLike) -> Genotype:
        """Draw one genotype; inactive knobs are never suggested."""
        return self._genotype(self._draw(trial))

    def _draw(self, trial: TrialLike, include_train: bool = True) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for path in self.order:
            knob = self.knobs[path]
            if not self.is_active(path, values) or (knob.definition.train and not include_train):
                values[path] = knob.definition.default
            elif path == "encoder.downsample" and _needs_indices(values["upsample"]):
                values[path] = "maxpool"  # max-unpooling needs the pooling indices
            elif knob.per_stage:
                values[path] = tuple(
                    knob.draw(trial, f"{knob.param}/{i}") for i in range(values["encoder.stages"])
                )
            else:
                values[path] = knob.draw(trial, knob.param)
        return values

    def is_active(self, path: str, values: Mapping[str, Any]) -> bool:
        intrinsic = INTRINSIC_CONDITIONS.get(path)
        if intrinsic is not None and not intrinsic(values):
            return False
        when = self.knobs[path].when
        return when is None or when.holds(values)

    def _genotype(self, v: Mapping[str, Any]) -> Genotype:
        train = {p.split(".", 1)[1]: v[p] for p, k in self.knobs.items() if k.definition.train}
        return Genotype(
            encoder=EncoderGene(
                stages=v["encoder.stages"],
                width=v["encoder.width"],
                max_width=v["encoder.max_width"],
                blocks_per_stage=v["encoder.blocks_per_stage"],
                kernel_size=v["encoder.kernel_size"],
                dilation=v["encoder.dilation"],
                downsample=v["encoder.downsample"],
                norm=v["encoder.norm"],
                activation=v["encoder.activation"],
            ),
            skip=v["skip"],
            upsample=v["upsample"],
            attention=AttentionGene(type=v["attention.type"], where=v["attention.where"]),
            head=HeadGene(
                kernel_size=v["head.kernel_size"],
                extra_conv=v["head.extra_conv"],
                extra_kernel_size=v["head.extra_kernel_size"],
            ),
            train=TrainGene(**train),
        )

    def sample(self, seed: int) -> Genotype:
        """A random genotype, the same for the same seed."""
        return self.suggest(RandomTrial(seed))

    def iter_genotypes(
        self, include_train: bool = True, limit: int = ENUMERATION_LIMIT
    ) -> Iterator[Genotype]:
        """Every distinct genotype of a finite space, in a fixed order.

        With ``include_train=False`` training knobs are left to the recipe, so this walks
        the distinct architectures. Raises ValueError on a continuous knob, or past
        ``limit`` distinct genotypes (so a space whose ``size()`` is within it never does).
        """
        seen: set[str] = set()
        draws = _odometer(lambda trial: self._draw(trial, include_train))
        for values in draws:
            genotype = self._genotype(values)
            if genotype.trial_key not in seen:
                if len(seen) >= limit:
                    raise ValueError(f"{self.name} has more than {limit} combinations to enumerate")
                seen.add(genotype.trial_key)
                yield genotype

    def params_for(
        self, genotype: Genotype, defaults: Mapping[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """The optimizer parameters that draw exactly ``genotype`` here, or None if none do.

        ``defaults`` gives training knobs the genotype leaves to the recipe (e.g. ``{"lr": 3e-3}``).
        This is how a design chosen outside the optimizer (a reference) is told to it.
        """
        trial = _GenotypeTrial(genotype.to_dict(), defaults or {})
        try:
            drawn = self.suggest(trial)
        except _NotInSpaceError:
            return None
        return trial.params if drawn.arch_json() == genotype.arch_json() else None

    # -- facts about the space ------------------------------------------------------------
    @property
    def searched(self) -> tuple[Knob, ...]:
        return tuple(self.knobs[p] for p in self.order if self.knobs[p].searched)

    def size(self, include_train: bool = False) -> float:
        """Number of distinct architectures (``math.inf`` when a float range is searched).

        Conditional knobs only count where they are active, and choices that build the
        same network (a width cap that never bites, dilation of a 1x1 kernel) count once.
        """
        return _count(self, include_train)


# ---------------------------------------------------------------------------------------
# Trials that are not Optuna's: random sampling and exhaustive enumeration
# ---------------------------------------------------------------------------------------


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
            yield draw(trial)  # type: ignore[arg-type]
        except _ExhaustedError as err:
            raise ValueError(str(err)) from None
        decisions, arities = trial.decisions, trial.arities
        while decisions and decisions[-1] + 1 >= arities[-1]:
            decisions.pop()
            arities.pop()
        if not decisions:
            return
        prefix = [*decisions[:-1], decisions[-1] + 1]


# ---------------------------------------------------------------------------------------
# Counting distinct architectures without enumerating them
# ---------------------------------------------------------------------------------------

_PER_STAGE = ("encoder.blocks_per_stage", "encoder.kernel_size", "encoder.dilation")


class _ContinuousError(Exception):
    pass


def _count(space: SearchSpace, include_train: bool) -> float:
    try:
        return _count_finite(space, include_train)
    except _ContinuousError:
        return math.inf


def _count_finite(space: SearchSpace, include_train: bool) -> float:
    referenced = {p for k in space.knobs.values() if k.when for p in k.when.paths}
    controlling = [
        p
        for p in space.order
        if p in referenced or p in ("encoder.stages", "upsample", "attention.type", "head.extra_conv")
    ]
    free = [
        p
        for p in space.order
        if p not in controlling
        and p not in _PER_STAGE
        and p not in ("encoder.width", "encoder.max_width", "encoder.downsample")
        and (include_train or not space.knobs[p].definition.train)
    ]
    total = 0.0
    for assignment in _assignments(space, controlling):
        values_of: dict[str, tuple[Any, ...] | None] = {}
        for path in space.order:
            if path in assignment:
                values_of[path] = (assignment[path],)
            elif not space.is_active(path, {**_defaults(space), **assignment}):
                values_of[path] = (space.knobs[path].definition.default,)
            else:
                values_of[path] = space.knobs[path].values()
        if any(values_of[p] is None for p in free):
            return math.inf
        product = 1.0
        for path in free:
            product *= len(values_of[path] or ())
        downsample = values_of["encoder.downsample"] or ()
        if _needs_indices(assignment["upsample"]):
            downsample = tuple(d for d in downsample if _keeps_indices(d))[:1]
        stages = assignment["encoder.stages"]
        product *= len(downsample)
        product *= _count_channels(values_of["encoder.width"], values_of["encoder.max_width"], stages)
        product *= _count_stagewise(space, values_of, stages)
        total += product
    return int(total) if total < 2**63 else total


def _defaults(space: SearchSpace) -> dict[str, Any]:
    return {p: k.value if k.mode == "fixed" else k.definition.default for p, k in space.knobs.items()}


def _assignments(space: SearchSpace, controlling: list[str]) -> Iterator[dict[str, Any]]:
    """Every combination of the knobs that decide which others are active."""

    def expand(index: int, current: dict[str, Any]) -> Iterator[dict[str, Any]]:
        if index == len(controlling):
            yield dict(current)
            return
        path = controlling[index]
        knob = space.knobs[path]
        if not space.is_active(path, {**_defaults(space), **current}):
            options: tuple[Any, ...] = (knob.definition.default,)
        else:
            options = knob.values() or ()
            if not options:  # a continuous knob that decides others: enumerate nothing here
                raise _ContinuousError(path)
        for option in options:
            current[path] = option
            yield from expand(index + 1, current)
        current.pop(path, None)

    yield from expand(0, {})


def _count_channels(widths: Any, caps: Any, stages: int) -> int:
    if widths is None or caps is None:
        return 1
    distinct = {
        EncoderGene(stages=stages, width=w, max_width=c).channels for w, c in itertools.product(widths, caps)
    }
    return len(distinct)


def _count_stagewise(space: SearchSpace, values_of: Mapping[str, Any], stages: int) -> float:
    """Blocks x (kernel, dilation) per stage, a 1x1 kernel making dilation irrelevant."""
    blocks = len(values_of["encoder.blocks_per_stage"])
    count = float(blocks**stages if space.knobs["encoder.blocks_per_stage"].per_stage else blocks)
    kernels = values_of["encoder.kernel_size"]
    dilations = len(values_of["encoder.dilation"])
    ones = 1 if 1 in kernels else 0
    others = len(kernels) - ones
    per_kernel = space.knobs["encoder.kernel_size"].per_stage
    per_dilation = space.knobs["encoder.dilation"].per_stage
    if per_kernel and per_dilation:
        return count * float(others * dilations + ones) ** stages
    if per_kernel:  # one dilation shared by all stages; it matters unless every kernel is 1
        return count * ((len(kernels) ** stages - ones) * dilations + ones)
    if per_dilation:
        return count * (others * dilations**stages + ones)
    return count * (others * dilations + ones)


# ---------------------------------------------------------------------------------------
# Loading and validation
# ---------------------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of silently keeping the last."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)  # type: ignore[no-untyped-call]
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,  # type: ignore[arg-type]
)


#: Limits on a space file, far above any real one (the shipped ones: ~1 KB, ~150 nodes, 5 levels),
#: so that a hostile file (a "billion laughs" of nested aliases, a document nested thousands of
#: levels deep) is refused before it costs seconds or gigabytes.
MAX_SPACE_BYTES = 1_048_576
MAX_SPACE_NODES = 10_000  # counted with every alias expanded
MAX_SPACE_DEPTH = 64


class _LimitError(yaml.MarkedYAMLError):
    """A well-formed document refused for its size."""


class _BoundedLoader(_UniqueKeyLoader):
    """Refuses documents nested deeper than ``MAX_SPACE_DEPTH`` or larger than ``MAX_SPACE_NODES``
    once aliases are expanded, while composing: an alias is not copied by the loader, but every
    consumer of the data (validation, error messages, ``str``) walks the expanded tree."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._sizes: dict[int, int] = {}  # id(node) -> expanded node count, for composed nodes

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
        if self._depth >= MAX_SPACE_DEPTH:
            raise _LimitError(None, None, f"nested deeper than {MAX_SPACE_DEPTH} levels", mark)
        alias = self.check_event(yaml.AliasEvent)  # type: ignore[no-untyped-call]
        self._depth += 1
        try:
            node = super().compose_node(parent, index)  # type: ignore[no-untyped-call]
        finally:
            self._depth -= 1
        if not alias:
            self._sizes[id(node)] = self._expanded_size(node, mark)
        elif id(node) not in self._sizes:  # the alias is inside the node it names: endless
            raise _LimitError(None, None, "an alias refers to the node that contains it", mark)
        return node

    def _expanded_size(self, node: yaml.Node, mark: Any) -> int:
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        size = 1 + sum(self._sizes[id(child)] for child in children)
        if size > MAX_SPACE_NODES:
            raise _LimitError(
                None,
                None,
                f"the document expands to more than {MAX_SPACE_NODES:,} values once its aliases "
                f"(*name) are resolved; nasfcn's YAML files need a few hundred",
                mark,
            )
        return size


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` within the limits of a space file (nesting, aliases expanded), for every
    YAML file a user hands nasfcn; raises ``yaml.YAMLError`` (duplicate keys too)."""
    return yaml.load(text, Loader=_BoundedLoader)


def yaml_problem(err: yaml.YAMLError) -> str:
    """One line for a YAML error: where, and what (``refused`` for a document past the limits)."""
    mark = getattr(err, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    problem = getattr(err, "problem", None) or str(err)
    return f"{'refused' if is_refused(err) else 'invalid YAML'} at {where}{problem}"


def is_refused(err: yaml.YAMLError) -> bool:
    """Whether a YAML error is a well-formed document refused for its size."""
    return isinstance(err, _LimitError)


def load_space(path: str | Path) -> SearchSpace:
    """Read and validate a space file; raises ``SpaceError`` listing every problem."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_SPACE_BYTES + 1)
    except FileNotFoundError:
        raise SpaceError(
            str(path),
            [SpaceIssue("", "file not found; shipped spaces live in search_spaces/")],
        ) from None
    except OSError as err:
        raise SpaceError(str(path), [SpaceIssue("", f"cannot read the file: {err}")]) from err
    _check_size(len(raw), str(path))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SpaceError(str(path), [SpaceIssue("", f"cannot read the file: {err}")]) from err
    return parse_space(text, source=str(path))


def _check_size(size: int, source: str) -> None:
    if size > MAX_SPACE_BYTES:
        raise SpaceError(
            source,
            [SpaceIssue("", f"refused: larger than {MAX_SPACE_BYTES:,} bytes; a space file needs a few KB")],
        )


def parse_space(text: str, source: str = "<string>") -> SearchSpace:
    _check_size(len(text.encode("utf-8")), source)
    try:
        data = load_yaml(text)
    except yaml.YAMLError as err:
        raise SpaceError(source, [SpaceIssue("", yaml_problem(err))]) from err
    return _Validator(source, text).space(data)


class _Validator:
    def __init__(self, source: str, text: str) -> None:
        self.source = source
        self.text = text
        self.issues: list[SpaceIssue] = []

    def error(self, path: str, message: str) -> None:
        self.issues.append(SpaceIssue(path, message))

    # -- the whole file ------------------------------------------------------------------
    def space(self, data: Any) -> SearchSpace:
        if not isinstance(data, dict):
            raise SpaceError(
                self.source,
                [SpaceIssue("", f"a space file must be a mapping of sections, got {_kind(data)}")],
            )
        for key in data:
            if key not in TOP_LEVEL_KEYS:
                self.error(
                    str(key),
                    f"unknown key{did_you_mean(str(key), TOP_LEVEL_KEYS)}; "
                    f"valid: {', '.join(TOP_LEVEL_KEYS)}",
                )
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            self.error("name", f"required: a non-empty string naming the space, got {_show(name)}")
            name = ""
        description = data.get("description", "")
        if not isinstance(description, str):
            self.error("description", "must be a string")
            description = ""
        in_channels, min_size = self.input(data.get("input", {}))

        written: dict[str, Any] = {}
        for section in SECTIONS[1:]:
            block = data.get(section, {})
            if block is None:
                block = {}
            if not isinstance(block, dict):
                self.error(section, f"must be a mapping of knobs, got {_kind(block)}")
                continue
            names = [k.path.split(".", 1)[1] for k in CATALOG if k.path.startswith(section + ".")]
            for key, spec in block.items():
                if str(key) not in names:
                    self.error(
                        f"{section}.{key}",
                        f"unknown knob{did_you_mean(str(key), names)}; valid: {', '.join(names)}",
                    )
                else:
                    written[f"{section}.{key}"] = spec
        for key in TOP_LEVEL_KNOBS:
            if key in data:
                written[key] = data[key]

        knobs = {
            d.path: self.knob(d, written[d.path]) if d.path in written else _default_knob(d)
            for d in CATALOG
            if d.path in written or not d.train
        }
        knobs = {p: k for p, k in knobs.items() if k is not None}
        if self.issues:
            raise SpaceError(self.source, self.issues)
        order = self.check_conditions(knobs)
        self.check_buildable(knobs, min_size)
        if self.issues:
            raise SpaceError(self.source, self.issues)
        return SearchSpace(
            name=name,
            knobs=knobs,
            order=order,
            in_channels=in_channels,
            min_size=min_size,
            description=description,
            source=self.source,
            text=self.text,
        )

    def input(self, block: Any) -> tuple[int, int]:
        result = {k: default for k, (_, _, default) in INPUT_KEYS.items()}
        if not isinstance(block, dict):
            self.error("input", f"must be a mapping with {', '.join(INPUT_KEYS)}, got {_kind(block)}")
            return result["channels"], result["min_size"]
        for key, value in block.items():
            if key not in INPUT_KEYS:
                self.error(
                    f"input.{key}",
                    f"unknown key{did_you_mean(str(key), tuple(INPUT_KEYS))}; valid: {', '.join(INPUT_KEYS)}",
                )
                continue
            low, high, _ = INPUT_KEYS[key]
            if not _is_int(value) or not low <= value <= high:
                self.error(f"input.{key}", f"must be an integer in [{low}, {high}], got {_show(value)}")
            else:
                result[key] = value
        return result["channels"], result["min_size"]

    # -- one knob -----------------------------------------------------------------------
    def knob(self, definition: KnobDef, spec: Any) -> Knob | None:
        path = definition.path
        if isinstance(spec, list):
            self.error(path, f"a bare list is ambiguous; write {{choices: {_show_list(spec)}}}")
            return None
        if not isinstance(spec, dict):
            return self.fixed(definition, spec, path)
        unknown = [k for k in spec if k not in SPEC_FORMS + SPEC_OPTIONS]
        for key in unknown:
            self.error(
                f"{path}.{key}",
                f"unknown key{did_you_mean(str(key), SPEC_FORMS + SPEC_OPTIONS)}; a knob is one "
                f"of {', '.join(SPEC_FORMS)} plus optional {', '.join(SPEC_OPTIONS)}",
            )
        forms = [k for k in SPEC_FORMS if k in spec]
        if unknown and not forms:
            return None  # the misspelt key is the one problem worth reporting
        if len(forms) != 1:
            found = ", ".join(forms) if forms else "none"
            self.error(path, f"give exactly one of {', '.join(SPEC_FORMS)} (found: {found})")
            return None
        form = forms[0]
        when = self.condition(path, spec.get("when"))
        per_stage = spec.get("per_stage", False)
        if not isinstance(per_stage, bool):
            self.error(f"{path}.per_stage", f"must be true or false, got {_show(per_stage)}")
            per_stage = False
        if per_stage and not definition.per_stage:
            stagewise = ", ".join(k.path for k in CATALOG if k.per_stage)
            self.error(f"{path}.per_stage", f"only per-stage knobs accept it: {stagewise}")
            per_stage = False
        if form == "value":
            knob = self.fixed(definition, spec["value"], f"{path}.value")
            if knob is None:
                return None
            if "step" in spec or "log" in spec:
                self.error(path, "step and log only apply to int/float ranges")
            return Knob(definition, "fixed", knob.value, when=when, per_stage=per_stage)
        if form == "choices":
            if "step" in spec or "log" in spec:
                self.error(path, "step and log only apply to int/float ranges")
            return self.choices(definition, spec["choices"], when, per_stage)
        return self.range(definition, form, spec, when, per_stage)

    def fixed(self, definition: KnobDef, value: Any, path: str) -> Knob | None:
        if not self.check_value(definition, value, path):
            return None
        return Knob(definition, "fixed", _normalize(definition, value))

    def choices(
        self, definition: KnobDef, choices: Any, when: Condition | None, per_stage: bool
    ) -> Knob | None:
        path = f"{definition.path}.choices"
        if not isinstance(choices, list):
            self.error(path, f"must be a list of values, got {_kind(choices)}")
            return None
        if not choices:
            self.error(path, f"is empty; give at least one of: {definition.describe_allowed()}")
            return None
        # Check every choice (no short-circuit): all problems are reported at once.
        results = [self.check_value(definition, c, f"{path}[{i}]") for i, c in enumerate(choices)]
        if not all(results):
            return None
        normalized = [_normalize(definition, c) for c in choices]
        for i, value in enumerate(normalized):
            if value in normalized[:i]:
                self.error(f"{path}[{i}]", f"{_show(value)} is listed twice")
                return None
        return Knob(definition, "choices", choices=tuple(normalized), when=when, per_stage=per_stage)

    def range(
        self,
        definition: KnobDef,
        form: str,
        spec: dict[str, Any],
        when: Condition | None,
        per_stage: bool,
    ) -> Knob | None:
        path = f"{definition.path}.{form}"
        bounds = spec[form]
        is_int = form == "int"
        log = spec.get("log", form == "log_uniform")
        if form == "log_uniform" and spec.get("log") is False:
            self.error(f"{definition.path}.log", "log_uniform is always on a log scale")
        if definition.type not in ("int", "float") or (is_int and definition.type != "int"):
            self.error(
                path,
                f"{definition.path} takes {definition.type} values; "
                + (
                    f"use choices from: {definition.describe_allowed()}"
                    if definition.type != "float"
                    else "use float: [low, high] or log_uniform: [low, high]"
                ),
            )
            return None
        if definition.type == "int" and not is_int:
            self.error(path, f"{definition.path} is an integer knob; use int: [low, high]")
            return None
        if not isinstance(bounds, list) or len(bounds) != 2:
            self.error(path, f"must be [low, high], got {_show(bounds)}")
            return None
        number_ok = _is_int if is_int else _is_number
        kind = "an integer" if is_int else "a number"
        if not all(number_ok(b) for b in bounds):
            for i, b in enumerate(bounds):
                if not number_ok(b):
                    self.error(f"{path}[{i}]", f"must be {kind}, got {_show(b)}")
            return None
        low, high = bounds
        if low > high:
            self.error(path, f"low {_show(low)} is greater than high {_show(high)}")
            return None
        if not isinstance(log, bool):
            self.error(f"{definition.path}.log", f"must be true or false, got {_show(log)}")
            return None
        if log and low <= 0:
            self.error(path, f"a log scale needs low > 0, got {_show(low)}")
            return None
        for i, bound in enumerate(bounds):
            self.check_bound(definition, bound, f"{path}[{i}]")
        step = spec.get("step")
        if step is not None:
            if not number_ok(step) or step <= 0:
                self.error(f"{definition.path}.step", f"must be a positive {kind[3:]}, got {_show(step)}")
                return None
            if log:
                self.error(f"{definition.path}.step", "step and log cannot be combined")
                return None
        knob = Knob(
            definition,
            "int" if is_int else "float",
            low=low if is_int else float(low),
            high=high if is_int else float(high),
            step=step,
            log=log,
            when=when,
            per_stage=per_stage,
        )
        allowed = definition.allowed_values()
        if allowed is not None:
            for value in knob.values() or ():
                if value not in allowed:
                    self.error(
                        path,
                        f"the range includes {_show(value)}, which is not allowed; "
                        f"allowed: {definition.describe_allowed()}",
                    )
                    return None
        return knob

    def check_value(self, definition: KnobDef, value: Any, path: str) -> bool:
        if value is None:
            if definition.nullable:
                return True
            self.error(path, f"null is not allowed; allowed: {definition.describe_allowed()}")
            return False
        type_ok = {
            "int": _is_int,
            "float": _is_number,
            "bool": lambda v: isinstance(v, bool),
            "str": lambda v: isinstance(v, str),
        }[definition.type]
        allowed = definition.allowed_values()
        if not type_ok(value):
            expected = {
                "int": "an integer",
                "float": "a number",
                "bool": "true or false",
                "str": "a name",
            }
            hint = f"; allowed: {definition.describe_allowed()}"
            self.error(path, f"expected {expected[definition.type]}, got {_show(value)!r}{hint}")
            return False
        if allowed is not None and value not in allowed:
            hint = did_you_mean(str(value), [str(a) for a in allowed]) if isinstance(value, str) else ""
            self.error(
                path,
                f"{_show(value)} is not allowed{hint}; allowed: {definition.describe_allowed()}",
            )
            return False
        return self.check_bound(definition, value, path)

    def check_bound(self, definition: KnobDef, value: Any, path: str) -> bool:
        low, high = definition.low, definition.high
        if low is not None and high is not None and not low <= value <= high:
            self.error(path, f"{_show(value)} is out of range; allowed: {definition.describe_allowed()}")
            return False
        return True

    def condition(self, path: str, text: Any) -> Condition | None:
        if text is None:
            return None
        if not isinstance(text, str):
            self.error(f"{path}.when", f"must be a condition string, got {_kind(text)}")
            return None
        try:
            return parse_condition(text)
        except ValueError as err:
            self.error(f"{path}.when", str(err))
            return None

    # -- the knobs together ------------------------------------------------------------
    def check_conditions(self, knobs: dict[str, Knob]) -> tuple[str, ...]:
        depends: dict[str, set[str]] = {p: set(INTRINSIC_DEPENDS.get(p, ())) for p in knobs}
        for path, knob in knobs.items():
            if knob.per_stage:
                depends[path].add("encoder.stages")
            if knob.when is None:
                continue
            for clause in knob.when.clauses:
                where = f"{path}.when"
                target = knobs.get(clause.path)
                if clause.path not in KNOBS:
                    self.error(
                        where,
                        f"refers to {clause.path!r}, which is not a knob"
                        f"{did_you_mean(clause.path, tuple(KNOBS))}",
                    )
                    continue
                if target is None or not target.declared:
                    self.error(
                        where,
                        f"refers to {clause.path}, which this space does not set; "
                        "declare it or remove the condition",
                    )
                    continue
                if clause.path == path:
                    self.error(where, "a knob cannot depend on itself")
                    continue
                if target.per_stage:
                    self.error(where, f"{clause.path} is chosen per stage; conditions need one value")
                    continue
                possible = target.values()
                for value in clause.values:
                    if possible is not None and value not in possible:
                        self.error(
                            where,
                            f"{clause.path} can never be {_show(value)}; its values: "
                            + ", ".join(_show(v) for v in possible),
                        )
                depends[path].add(clause.path)
        return self.topological(knobs, depends)

    def topological(self, knobs: dict[str, Knob], depends: dict[str, set[str]]) -> tuple[str, ...]:
        catalog_order = [d.path for d in CATALOG if d.path in knobs]
        order: list[str] = []
        done: set[str] = set()
        pending = list(catalog_order)
        while pending:
            ready = [p for p in pending if depends[p] <= done]
            if not ready:
                cycle = ", ".join(pending)
                self.error("", f"conditions form a cycle among: {cycle}")
                return tuple(order + pending)
            first = ready[0]
            order.append(first)
            done.add(first)
            pending.remove(first)
        return tuple(order)

    def check_buildable(self, knobs: dict[str, Knob], min_size: int) -> None:
        stages = knobs["encoder.stages"].values() or ()
        upsample = knobs["upsample"].values() or ()
        downsample = knobs["encoder.downsample"].values() or ()
        for choice in upsample:
            if _needs_indices(choice) and not any(_keeps_indices(d) for d in downsample):
                self.error(
                    "upsample",
                    f"{choice} reuses max-pooling indices, but encoder.downsample only allows "
                    f"{', '.join(downsample)}; add maxpool to encoder.downsample or drop {choice}",
                )
        fewest = min(stages) if stages else 1
        for choice in knobs["skip"].values() or ():
            need = _min_stages(choice)
            if fewest < need:
                self.error(
                    "skip",
                    f"{choice} needs encoder.stages >= {need}, but encoder.stages allows {fewest}; "
                    f"raise the smallest encoder.stages choice or drop {choice}",
                )
        deepest = max(stages) if stages else 1
        if 2**deepest > min_size:
            self.error(
                "encoder.stages",
                f"{deepest} stages downsample by {2**deepest}, more than input.min_size "
                f"{min_size} allows; use at most {int(math.log2(min_size))} stages or raise "
                "input.min_size",
            )


def _default_knob(definition: KnobDef) -> Knob:
    return Knob(definition, "fixed", definition.default, declared=False)


def _normalize(definition: KnobDef, value: Any) -> Any:
    if definition.type == "float" and value is not None:
        return float(value)
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string"}.get(type(value), _show(value))


def _show_list(values: list[Any]) -> str:
    return "[" + ", ".join(_show(v) for v in values) + "]"


def size_text(count: float) -> str:
    """A space size for people: thousands separated, or why it is infinite."""
    return "infinite (float ranges)" if math.isinf(count) else f"{int(count):,}"


def shipped_spaces() -> list[Path]:
    """The spaces in the repository's ``search_spaces/`` folder (when run from a checkout)."""
    folder = Path(__file__).resolve().parent.parent / "search_spaces"
    return sorted(folder.glob("*.yaml"))
