"""Conditions (``when:``): a tiny language, parsed (never eval'ed)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

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
