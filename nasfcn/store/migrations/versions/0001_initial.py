"""Initial schema: searches, architectures, trials, epochs.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "searches",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("space_name", sa.String(200)),
        sa.Column("space_yaml", sa.Text()),
        sa.Column("dataset", sa.String(500), nullable=False),
        sa.Column("config_json", sa.Text(), nullable=False),
        sa.Column("recipe_json", sa.Text(), nullable=False),
        sa.Column("versions_json", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("name", name="uq_searches_name"),
    )
    op.create_table(
        "architectures",
        sa.Column("arch_id", sa.String(32), primary_key=True),
        sa.Column("genotype_json", sa.Text(), nullable=False),
        sa.Column("params", sa.BigInteger()),
        sa.Column("flops", sa.BigInteger()),
        sa.Column("latency_ms", sa.Float()),
        sa.Column("peak_memory_mb", sa.Float()),
        sa.Column("cost_device", sa.String(200)),
        sa.Column("cost_input", sa.String(50)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "trials",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "search_id", sa.Integer(), sa.ForeignKey("searches.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("ray_trial_id", sa.String(100)),
        sa.Column("arch_id", sa.String(32), sa.ForeignKey("architectures.arch_id"), nullable=False),
        sa.Column("trial_key", sa.String(32), nullable=False),
        sa.Column("genotype_json", sa.Text(), nullable=False),
        sa.Column("params_json", sa.Text()),
        sa.Column("dataset", sa.String(500), nullable=False),
        sa.Column("recipe_key", sa.String(32), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("best_epoch", sa.Integer()),
        sa.Column("best_miou", sa.Float()),
        sa.Column("best_pixel_accuracy", sa.Float()),
        sa.Column("final_miou", sa.Float()),
        sa.Column("epochs_trained", sa.Integer(), nullable=False),
        sa.Column("best_metrics_json", sa.Text()),
        sa.Column("final_metrics_json", sa.Text()),
        sa.Column("error", sa.Text()),
        sa.Column("traceback", sa.Text()),
        sa.Column("checkpoint", sa.Text()),
        sa.Column("cached_from", sa.Integer(), sa.ForeignKey("trials.id", ondelete="SET NULL")),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("search_id", "number", name="uq_trials_search_number"),
    )
    op.create_index("ix_trials_search_status", "trials", ["search_id", "status"])
    op.create_index("ix_trials_search_best", "trials", ["search_id", "best_miou"])
    op.create_index("ix_trials_cache", "trials", ["trial_key", "dataset", "recipe_key"])
    op.create_index("ix_trials_arch", "trials", ["arch_id"])
    op.create_table(
        "epochs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("trial_id", sa.Integer(), sa.ForeignKey("trials.id", ondelete="CASCADE"), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("train_loss", sa.Float()),
        sa.Column("val_miou", sa.Float()),
        sa.Column("val_pixel_accuracy", sa.Float()),
        sa.Column("per_class_iou_json", sa.Text()),
        sa.Column("seconds", sa.Float()),
        sa.Column("lr", sa.Float()),
        sa.Column("images_per_s", sa.Float()),
        sa.UniqueConstraint("trial_id", "epoch", name="uq_epochs_trial_epoch"),
    )
    op.create_index("ix_epochs_trial_id", "epochs", ["trial_id"])


def downgrade() -> None:
    op.drop_table("epochs")
    op.drop_table("trials")
    op.drop_table("architectures")
    op.drop_table("searches")
