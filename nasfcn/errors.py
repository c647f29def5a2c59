"""The root of every error nasfcn raises on purpose: one ``except NasfcnError`` catches them all.

Like Optuna's ``OptunaError``. Each error class keeps the builtin base it had before
(``ValueError``, ``RuntimeError``, ``KeyError``) as a second parent, so callers that catch
those keep working. This module imports nothing of nasfcn, so every layer may use it.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["NasfcnError", "raise_problems"]


class NasfcnError(Exception):
    """An error nasfcn raised on purpose; its message says what is wrong and how to fix it."""


def raise_problems(
    problems: Sequence[str], header: str, error: type[NasfcnError], separator: str = "; "
) -> None:
    """Raise ``error`` listing every problem at once, so a user fixes them all in one go; none: return.

    The message is ``header`` followed by the problems joined with ``separator``.
    """
    if problems:
        raise error(header + separator.join(problems))
