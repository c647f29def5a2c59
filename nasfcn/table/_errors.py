"""What a table refuses: a file that is not what it claims, a lookup of something it lacks."""

from __future__ import annotations

from nasfcn.errors import NasfcnError


class TableError(NasfcnError, ValueError):
    """A table cannot be exported or loaded: the message says which one, why, and the fix."""


class TableLookupError(TableError, KeyError):
    """An architecture, seed, epoch or metric the table does not hold; the message lists what it has."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
