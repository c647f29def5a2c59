"""Storage tests: every one runs on SQLite and on a real PostgreSQL server (``db_url`` and the
PostgreSQL fixtures live in tests/conftest.py, which other packages' tests share)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _dispose_stores(store_tracker: list) -> None:
    """Close every pooled connection a test opened (unclosed ones warn when collected)."""
