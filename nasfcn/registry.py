"""Named choices (blocks, upsampling, attention, datasets, ...) looked up by string.

The names the YAML language, the CLI and configs accept, and their properties, are listed
in ``nasfcn.catalogue``; an implementation registry is bound to its catalogue kind and
refuses a name the catalogue lacks.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from nasfcn.errors import NasfcnError

T = TypeVar("T")


class UnknownChoiceError(NasfcnError, KeyError):
    """A name that is not in a registry; the message lists the valid ones."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


def closest(name: str, candidates: list[str] | tuple[str, ...]) -> str | None:
    matches = difflib.get_close_matches(str(name), list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(name: str, candidates: list[str] | tuple[str, ...]) -> str:
    match = closest(name, candidates)
    return f" (did you mean {match!r}?)" if match else ""


class Registry(Generic[T]):
    """A name -> entry mapping where duplicates raise and unknown names explain themselves."""

    def __init__(self, kind: str, catalogue: Registry[Any] | None = None) -> None:
        """``catalogue``: the kind in ``nasfcn.catalogue`` whose keys alone may be registered."""
        self.kind = kind
        self.catalogue = catalogue
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(entry: T) -> T:
            self.add(name, entry)
            return entry

        return decorator

    def add(self, name: str, entry: T) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        if self.catalogue is not None and name not in self.catalogue:
            raise ValueError(
                f"{self.kind} {name!r} is not in nasfcn/catalogue.py; add it there first "
                f"(catalogued: {', '.join(self.catalogue.names())})"
            )
        self._entries[name] = entry

    def remove(self, name: str) -> None:
        """Unregister ``name`` (an unknown name raises, listing the valid ones)."""
        self.get(name)
        del self._entries[name]

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownChoiceError(
                f"unknown {self.kind} {name!r}{did_you_mean(name, self.names())}; "
                f"valid: {', '.join(self.names())}"
            ) from None

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
