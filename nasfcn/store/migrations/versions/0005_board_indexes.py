"""Indexes the live leaderboard's reads need at 10^5 trials: when a search's trials last
started and finished (the refresh's watermark reads both maxima from an index instead of
visiting every row), and each dataset's results (the cross-search view and the seed spread
read one dataset's scored trials, not the whole table).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

#: name -> columns of ``trials``
_INDEXES = {
    "ix_trials_search_started": ["search_id", "started_at"],
    "ix_trials_search_finished": ["search_id", "finished_at"],
    "ix_trials_dataset_best": ["dataset", "best_miou"],
}


def upgrade() -> None:
    for name, columns in _INDEXES.items():
        op.create_index(name, "trials", columns)


def downgrade() -> None:
    for name in reversed(_INDEXES):
        op.drop_index(name, table_name="trials")
