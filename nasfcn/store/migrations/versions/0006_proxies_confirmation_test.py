"""Zero-cost proxy scores per architecture and dataset; confirmation runs; held-out test results.

- ``proxy_scores``: one row per architecture, dataset, input shape, seed and proxy, with the
  value or the error that proxy raised (an error in one proxy is recorded, not fatal), the
  seconds it took and the device. Per architecture, not per trial: a proxy scores a network
  at initialisation, so every trial of that network on that data shares the figure.
- ``trials.confirms``: a confirmation run repeats an earlier trial's network and knobs with
  another seed; this holds that trial's number in the same search.
- ``trials.test_miou`` / ``test_metrics_json``: the held-out test split's figures, evaluated
  once for confirmed and exported networks (the search never selects on them).

Columns are added with plain ALTER TABLE, as in 0004.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

#: name -> type of the new ``trials`` columns
_TRIAL_COLUMNS: dict[str, sa.types.TypeEngine[Any]] = {
    "confirms": sa.Integer(),
    "test_miou": sa.Float(),
    "test_metrics_json": sa.Text(),
}


def upgrade() -> None:
    op.create_table(
        "proxy_scores",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("arch_id", sa.String(32), sa.ForeignKey("architectures.arch_id"), nullable=False),
        sa.Column("dataset", sa.String(500), nullable=False),
        sa.Column("input", sa.String(50), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("proxy", sa.String(50), nullable=False),
        sa.Column("value", sa.Float()),
        sa.Column("error", sa.Text()),
        sa.Column("seconds", sa.Float()),
        sa.Column("device", sa.String(200)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("arch_id", "dataset", "input", "seed", "proxy", name="uq_proxy_scores_key"),
    )
    for name, kind in _TRIAL_COLUMNS.items():
        op.add_column("trials", sa.Column(name, kind))


def downgrade() -> None:
    for name in reversed(_TRIAL_COLUMNS):
        op.drop_column("trials", name)
    op.drop_table("proxy_scores")
