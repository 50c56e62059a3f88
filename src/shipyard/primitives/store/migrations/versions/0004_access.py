"""Identities, the audit log and approvals (issue 11, parts 5 and 6).

``tokens``: one row per named identity; only the SHA-256 digest of its token is kept, looked up by the
token's id prefix. ``audit``: who did what (deployments, approvals, secret and token changes, runs, locks,
window overrides). ``approvals``: the decisions on a deployment waiting for approval.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tokens",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("token_id", sa.Text, nullable=False, unique=True),
        sa.Column("digest", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("envs", sa.Text, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("revoked_at", sa.Float, nullable=True),
        sa.Column("last_used_at", sa.Float, nullable=True),
    )
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("performer", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("env", sa.Text, nullable=True),
        sa.Column("target", sa.Text, nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Index("ix_audit_env_id", "env", "id"),
    )
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("deployment_id", sa.Integer,
                  sa.ForeignKey("deployments.id", name="fk_approvals_deployment", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("identity", sa.Text, nullable=False),
        sa.Column("decision", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.UniqueConstraint("deployment_id", "identity", name="uq_approvals_deployment_identity"),
    )


def downgrade() -> None:
    op.drop_table("approvals")
    op.drop_table("audit")
    op.drop_table("tokens")
