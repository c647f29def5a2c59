"""The root of every error nasfcn raises on purpose: one ``except NasfcnError`` catches them all.

Like Optuna's ``OptunaError``. Each error class keeps the builtin base it had before
(``ValueError``, ``RuntimeError``, ``KeyError``) as a second parent, so callers that catch
those keep working. This module imports nothing, so every layer may use it.
"""

from __future__ import annotations

__all__ = ["NasfcnError"]


class NasfcnError(Exception):
    """An error nasfcn raised on purpose; its message says what is wrong and how to fix it."""
