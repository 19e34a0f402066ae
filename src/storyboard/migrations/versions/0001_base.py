"""The generated_videos table as the original platform had it, before the storyboard columns.

Revision ID: 0001_base
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_base"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "generated_videos",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("video_url", sa.Text, server_default=""),
        sa.Column("model_id", sa.String(64)),
        sa.Column("parameters", sa.Text),
        sa.Column("status", sa.String(32), nullable=False, server_default="pending"),
        sa.Column("created_at", sa.DateTime, nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_generated_videos_status", "generated_videos", ["status"])


def downgrade() -> None:
    op.drop_table("generated_videos")
