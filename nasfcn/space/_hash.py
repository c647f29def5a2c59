"""The space's identity: a hash of what it means, not of how its file is written."""

from __future__ import annotations

import hashlib
from typing import Any

from nasfcn.genotype import canonical_json
from nasfcn.space._knobs import Knob
from nasfcn.space._space import SearchSpace

#: Length of ``space_hash`` in hex digits (64 bits: ample for telling spaces apart).
SPACE_HASH_LENGTH = 16


def space_hash(space: SearchSpace) -> str:
    """Hash of the parsed space: its input and every knob's values, conditions and per-stage flag.

    Comments, whitespace, key order, the name and the description do not change it, so a
    table built from a space file stays valid when the file is reformatted or renamed;
    anything that changes which networks the space holds does.
    """
    canonical = {
        "in_channels": space.in_channels,
        "min_size": space.min_size,
        "knobs": {path: _knob(knob) for path, knob in sorted(space.knobs.items())},
    }
    return hashlib.sha256(canonical_json(canonical).encode()).hexdigest()[:SPACE_HASH_LENGTH]


def _knob(knob: Knob) -> dict[str, Any]:
    when = None
    if knob.when is not None:
        when = [[c.path, c.op, list(c.values)] for c in knob.when.clauses]
    return {
        "mode": knob.mode,
        "value": list(knob.value) if isinstance(knob.value, tuple) else knob.value,
        "choices": [list(c) if isinstance(c, tuple) else c for c in knob.choices],
        "low": knob.low,
        "high": knob.high,
        "step": knob.step,
        "log": knob.log,
        "when": when,
        "per_stage": knob.per_stage,
    }
