"""The status page's incidents and their updates, scheduled maintenance, synthetic check results (issue 13).

Revision ID: 0009
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
# The coordinator re-chains revisions at merge; on this branch 0009 follows access's 0004.
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("impact", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("components", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("resolved_at", sa.Float, nullable=True),
        sa.Column("performer", sa.Text, nullable=False),
    )
    op.create_table(
        "incident_updates",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.Integer,
                  sa.ForeignKey("incidents.id", name="fk_incident_updates_incident", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("performer", sa.Text, nullable=False),
        sa.Index("ix_incident_updates_incident", "incident_id", "id"),
    )
    op.create_table(
        "maintenances",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("env", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("starts_at", sa.Float, nullable=False),
        sa.Column("ends_at", sa.Float, nullable=False),
        sa.Column("switch", sa.Boolean, nullable=False),
        sa.Column("allow", sa.Text, nullable=False),
        sa.Column("notified", sa.Text, nullable=False),
        sa.Column("switched", sa.Boolean, nullable=False),
        sa.Column("cancelled_at", sa.Float, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("performer", sa.Text, nullable=False),
    )
    op.create_table(
        "check_minutes",
        sa.Column("component", sa.Text, primary_key=True),
        sa.Column("t", sa.BigInteger, primary_key=True),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("ok", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for table in ("check_minutes", "maintenances", "incident_updates", "incidents"):
        op.drop_table(table)
