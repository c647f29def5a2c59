"""Final runs: a time-budgeted search's best networks trained again for the time it kept for them.

- ``trials.extends``: a final run trains an earlier trial's network and knobs from scratch for
  more epochs (``nasfcn.search._final``); this holds that trial's number in the same search.

Columns are added with plain ALTER TABLE, as in 0004 and 0006.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("trials", sa.Column("extends", sa.Integer()))


def downgrade() -> None:
    op.drop_column("trials", "extends")
