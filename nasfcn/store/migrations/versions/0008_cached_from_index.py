"""An index on ``trials.cached_from``, for the rows that have one.

Deleting a trial makes the database look for the trials ``cached_from`` it (its foreign key sets
them to NULL). Without an index each deleted trial scanned every trial: replacing an arena of
10^4 trials took minutes, so ``store_arena`` built a temporary index for each replacement. The
index is partial (``cached_from IS NOT NULL``): most trials trained themselves, so it holds only
the cached ones and costs an insert nothing; both SQLite and PostgreSQL use it for the foreign
key's ``cached_from = ?`` lookup, which implies the condition.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_WHERE = sa.text("cached_from IS NOT NULL")


def upgrade() -> None:
    op.create_index(
        "ix_trials_cached_from", "trials", ["cached_from"], sqlite_where=_WHERE, postgresql_where=_WHERE
    )


def downgrade() -> None:
    op.drop_index("ix_trials_cached_from", table_name="trials")
