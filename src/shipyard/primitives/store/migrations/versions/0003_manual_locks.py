"""Manual locks (`shipyard lock acquire`): one per environment, refusing deploys while held.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "manual_locks",
        sa.Column("env", sa.Text, primary_key=True),
        sa.Column("holder", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("acquired_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("manual_locks")
