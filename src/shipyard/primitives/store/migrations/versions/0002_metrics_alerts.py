"""Metric history (10 s raw and 1 min points per env × release) and persisted alert states.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metric_points",
        sa.Column("resolution", sa.Text, primary_key=True),
        sa.Column("env", sa.Text, primary_key=True),
        sa.Column("release", sa.Text, primary_key=True),
        sa.Column("t", sa.BigInteger, primary_key=True),
        sa.Column("requests", sa.BigInteger, nullable=False),
        sa.Column("errors", sa.BigInteger, nullable=False),
        sa.Column("p50", sa.Float, nullable=True),
        sa.Column("p95", sa.Float, nullable=True),
        sa.Column("p99", sa.Float, nullable=True),
        sa.Column("cpu", sa.Float, nullable=True),
        sa.Column("rss", sa.BigInteger, nullable=True),
        sa.Column("memory", sa.Float, nullable=True),
        sa.Column("up", sa.Integer, nullable=False),
        sa.Column("instances", sa.Integer, nullable=False),
        sa.Column("health_failures", sa.Integer, nullable=False),
        sa.Column("restarts", sa.Integer, nullable=False),
        sa.Column("hist", sa.Text, nullable=True),
    )
    op.create_index("ix_metric_points_env_t", "metric_points", ["resolution", "env", "t"])
    op.create_table(
        "alert_states",
        sa.Column("rule", sa.Text, primary_key=True),
        sa.Column("env", sa.Text, primary_key=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("changed_at", sa.Float, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("alert_states")
    op.drop_index("ix_metric_points_env_t", table_name="metric_points")
    op.drop_table("metric_points")
