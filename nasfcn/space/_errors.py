"""Errors of the space language: every problem of one file, reported at once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nasfcn.errors import NasfcnError


@dataclass(frozen=True)
class SpaceIssue:
    path: str  # dotted field path, e.g. encoder.kernel_size.choices[2]
    message: str


class SpaceError(NasfcnError, ValueError):
    """Everything wrong with one space file, reported at once (a ``ValueError`` too, as before)."""

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
