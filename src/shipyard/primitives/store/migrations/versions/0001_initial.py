"""Initial schema: releases, environments, deployments + locks, steps, events, instances, backups, drills.

Revision ID: 0001
Revises:
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
        "releases",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("commit_sha", sa.Text, nullable=False),
        sa.Column("ref", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("author", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("build_duration_s", sa.Float, nullable=False),
        sa.Column("content_hash", sa.Text, nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("secrets_version", sa.Integer, nullable=False),
        sa.Column("build_log", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
    )
    op.create_index("ix_releases_created_at", "releases", ["created_at"])

    op.create_table(
        "environments",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("current_release", sa.Text, nullable=True),
        sa.Column("previous_release", sa.Text, nullable=True),
        sa.Column("routing", sa.Text, nullable=True),
        sa.Column("secrets_version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )

    op.create_table(
        "deployments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("env", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("release", sa.Text, nullable=False),
        sa.Column("previous_release", sa.Text, nullable=True),
        sa.Column("strategy", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float, nullable=True),
        sa.Column("plan", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
    )
    op.create_index("ix_deployments_env_id", "deployments", ["env", "id"])
    op.create_index("ix_deployments_status", "deployments", ["status"])

    op.create_table(
        "locks",
        sa.Column("env", sa.Text, primary_key=True),
        sa.Column("deployment_id", sa.Integer, sa.ForeignKey("deployments.id", name="fk_locks_deployment"),
                  nullable=False),
        sa.Column("acquired_at", sa.Float, nullable=False),
    )

    op.create_table(
        "steps",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("deployment_id", sa.Integer,
                  sa.ForeignKey("deployments.id", name="fk_steps_deployment", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("started_at", sa.Float, nullable=True),
        sa.Column("duration_s", sa.Float, nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
    )
    op.create_index("ix_steps_deployment_idx", "steps", ["deployment_id", "idx"])

    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("env", sa.Text, nullable=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("data", sa.Text, nullable=True),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_index("ix_events_env_id", "events", ["env", "id"])

    op.create_table(
        "instances",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("env", sa.Text, nullable=False),
        sa.Column("release", sa.Text, nullable=False),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("port", sa.Integer, nullable=False),
        sa.Column("pid", sa.Integer, nullable=True),
        sa.Column("create_time", sa.Float, nullable=True),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("started_at", sa.Float, nullable=True),
        sa.Column("restarts", sa.Integer, nullable=False),
    )
    op.create_index("ix_instances_env", "instances", ["env"])

    op.create_table(
        "backup_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("env", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float, nullable=True),
        sa.Column("backup_id", sa.Text, nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
    )
    op.create_index("ix_backup_runs_env_id", "backup_runs", ["env", "id"])

    op.create_table(
        "drills",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("env", sa.Text, nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_drills_env_id", "drills", ["env", "id"])


def downgrade() -> None:
    for table in ("drills", "backup_runs", "instances", "events", "steps", "locks", "deployments",
                  "environments", "releases"):
        op.drop_table(table)
