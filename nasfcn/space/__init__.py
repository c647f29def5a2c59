"""The search-space language: YAML in, a validated ``SearchSpace`` out.

A space file sets knobs of the FCN family (see ``search_spaces/README.md``). Each knob is
a fixed value, a list of ``choices`` or an ``int``/``float`` range (``log: true`` for a
log scale), may be active only ``when`` a condition on other knobs holds, and per-stage
knobs may be chosen separately for every stage (``per_stage: true``).

``SearchSpace.suggest(trial)`` is define-by-run and only calls ``trial.suggest_*``:
the same code drives Optuna, ``sample(seed)``, ``FixedTrial`` replays and exhaustive
enumeration. Parameter names are ``/`` paths that match the genotype's fields.

One private module per section, in the order they build on each other: ``_errors``,
``_catalog`` (the knobs the language knows), ``_conditions`` (``when:``), ``_knobs``,
``_trials`` (the ``TrialLike`` adapters), ``_counting``, ``_space`` (``SearchSpace``),
``_yaml`` (the bounded loader), ``_validate`` (a file in, a space or every problem out) and
``_hash`` (the space's identity, for files that claim to come from it).
"""

from nasfcn.space._catalog import (
    CATALOG,
    ENUMERATION_LIMIT,
    INPUT_KEYS,
    INTRINSIC_CONDITIONS,
    INTRINSIC_DEPENDS,
    INTRINSIC_TEXT,
    KNOBS,
    MAX_STAGES,
    SECTIONS,
    SPEC_FORMS,
    SPEC_OPTIONS,
    TOP_LEVEL_KEYS,
    TOP_LEVEL_KNOBS,
    KnobDef,
    Values,
)
from nasfcn.space._conditions import Clause, Condition, parse_condition
from nasfcn.space._counting import size_text
from nasfcn.space._errors import SpaceError, SpaceIssue
from nasfcn.space._hash import SPACE_HASH_LENGTH, space_hash
from nasfcn.space._knobs import Knob, TrialLike
from nasfcn.space._space import SearchSpace
from nasfcn.space._trials import RandomTrial
from nasfcn.space._validate import load_space, parse_space, shipped_spaces
from nasfcn.space._yaml import (
    MAX_SPACE_BYTES,
    MAX_SPACE_DEPTH,
    MAX_SPACE_NODES,
    is_refused,
    load_yaml,
    yaml_problem,
)

__all__ = [
    "CATALOG",
    "ENUMERATION_LIMIT",
    "INPUT_KEYS",
    "INTRINSIC_CONDITIONS",
    "INTRINSIC_DEPENDS",
    "INTRINSIC_TEXT",
    "KNOBS",
    "MAX_SPACE_BYTES",
    "MAX_SPACE_DEPTH",
    "MAX_SPACE_NODES",
    "MAX_STAGES",
    "SECTIONS",
    "SPACE_HASH_LENGTH",
    "SPEC_FORMS",
    "SPEC_OPTIONS",
    "TOP_LEVEL_KEYS",
    "TOP_LEVEL_KNOBS",
    "Clause",
    "Condition",
    "Knob",
    "KnobDef",
    "RandomTrial",
    "SearchSpace",
    "SpaceError",
    "SpaceIssue",
    "TrialLike",
    "Values",
    "is_refused",
    "load_space",
    "load_yaml",
    "parse_condition",
    "parse_space",
    "shipped_spaces",
    "size_text",
    "space_hash",
    "yaml_problem",
]
