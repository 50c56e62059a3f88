"""Process types and scheduled jobs: each instance's process type; the runs of `[jobs]`.

Revision ID: 0007
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.add_column(sa.Column("process", sa.Text, nullable=False, server_default="web"))
    op.create_table(
        "job_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("env", sa.Text, nullable=False),
        sa.Column("job", sa.Text, nullable=False),
        sa.Column("release", sa.Text, nullable=True),
        sa.Column("trigger", sa.Text, nullable=False),  # schedule | manual
        sa.Column("scheduled_for", sa.Float, nullable=True),
        sa.Column("status", sa.Text, nullable=False),  # running | succeeded | failed | timed_out | skipped | replaced
        sa.Column("exit_code", sa.Integer, nullable=True),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float, nullable=True),
        sa.Column("output_tail", sa.Text, nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Index("ix_job_runs_env_job_id", "env", "job", "id"),
    )


def downgrade() -> None:
    op.drop_table("job_runs")
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("process")
