"""Per trial: where it trained, its peak training memory (GPU packing needs both), and
which reference design it is, if any.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trials") as batch:
        batch.add_column(sa.Column("train_device", sa.String(200)))
        batch.add_column(sa.Column("peak_train_memory_mb", sa.Float()))
        batch.add_column(sa.Column("reference", sa.String(50)))


def downgrade() -> None:
    with op.batch_alter_table("trials") as batch:
        batch.drop_column("reference")
        batch.drop_column("peak_train_memory_mb")
        batch.drop_column("train_device")
