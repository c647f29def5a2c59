"""Cost figures per trial (input size and device with them) instead of one per architecture,
which the next search at another input size or on another device overwrote.

Existing trials get the figures their architecture holds now. Columns are added and dropped
with plain ALTER TABLE on SQLite too (3.35+): batch mode's copy-and-move would drop and
re-create ``architectures``, which trials reference, and with foreign keys on (as nasfcn
opens SQLite) dropping a referenced table deletes or refuses what hangs on it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

#: The figures, as architectures held them before (name there -> name in trial_costs).
_MOVED = {
    "params": "params",
    "flops": "flops",
    "latency_ms": "latency_ms",
    "peak_memory_mb": "peak_memory_mb",
    "cost_input": "input",
    "cost_device": "device",
}
_OLD_TYPES: dict[str, sa.types.TypeEngine[Any]] = {
    "params": sa.BigInteger(),
    "flops": sa.BigInteger(),
    "latency_ms": sa.Float(),
    "peak_memory_mb": sa.Float(),
    "cost_device": sa.String(200),
    "cost_input": sa.String(50),
}


def _architectures() -> sa.TableClause:
    return sa.table("architectures", sa.column("arch_id"), *(sa.column(name) for name in _MOVED))


def _trial_costs() -> sa.TableClause:
    return sa.table(
        "trial_costs", sa.column("trial_id"), sa.column("arch_id"), *map(sa.column, _MOVED.values())
    )


def upgrade() -> None:
    op.create_table(
        "trial_costs",
        sa.Column("trial_id", sa.Integer(), sa.ForeignKey("trials.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("arch_id", sa.String(32), sa.ForeignKey("architectures.arch_id"), nullable=False),
        sa.Column("input", sa.String(50)),
        sa.Column("device", sa.String(200)),
        sa.Column("params", sa.BigInteger()),
        sa.Column("flops", sa.BigInteger()),
        sa.Column("latency_ms", sa.Float()),
        sa.Column("peak_memory_mb", sa.Float()),
    )
    op.create_index("ix_trial_costs_arch", "trial_costs", ["arch_id", "input", "device"])
    arch, costs = _architectures(), _trial_costs()
    trials = sa.table("trials", sa.column("id"), sa.column("arch_id"))
    measured = sa.or_(
        *(arch.c[name].is_not(None) for name in ("params", "flops", "latency_ms", "peak_memory_mb"))
    )
    op.execute(
        costs.insert().from_select(
            ["trial_id", "arch_id", *_MOVED.values()],
            sa.select(trials.c.id, arch.c.arch_id, *(arch.c[name] for name in _MOVED))
            .join_from(trials, arch, trials.c.arch_id == arch.c.arch_id)
            .where(measured),
        )
    )
    for name in _MOVED:
        op.drop_column("architectures", name)


def downgrade() -> None:
    """Back to one figure per architecture: the one its latest trial measured."""
    for name, kind in _OLD_TYPES.items():
        op.add_column("architectures", sa.Column(name, kind))
    arch, costs = _architectures(), _trial_costs()
    figures = {
        old: sa.select(costs.c[new])
        .where(costs.c.arch_id == arch.c.arch_id)
        .order_by(costs.c.trial_id.desc())
        .limit(1)
        .scalar_subquery()
        for old, new in _MOVED.items()
    }
    op.execute(arch.update().values(**figures))
    op.drop_index("ix_trial_costs_arch", table_name="trial_costs")
    op.drop_table("trial_costs")
