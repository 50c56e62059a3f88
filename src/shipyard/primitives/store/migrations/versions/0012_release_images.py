"""Images built of releases: tag, registry digest, how long the build and push took (issue 14, images).

Revision ID: 0012
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "release_images",
        sa.Column("release", sa.Text, primary_key=True),
        sa.Column("image", sa.Text, nullable=False),
        sa.Column("digest", sa.Text, nullable=True),
        sa.Column("commit_sha", sa.Text, nullable=False),
        sa.Column("dockerfile", sa.Text, nullable=False),
        sa.Column("built_at", sa.Float, nullable=False),
        sa.Column("build_duration_s", sa.Float, nullable=False),
        sa.Column("push_duration_s", sa.Float, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("release_images")
