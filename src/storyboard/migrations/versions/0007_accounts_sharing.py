"""Many users on one server: API tokens, job owners, share links, comments, the signing key.

Jobs made before (single-user mode) have no owner: once tokens exist, only admins see them.

Revision ID: 0007_accounts_sharing
Revises: 0006_cache_outbox_budget
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_accounts_sharing"
down_revision = "0006_cache_outbox_budget"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("admin", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("revoked_at", sa.DateTime),
        sa.Column("last_used_at", sa.DateTime),
    )
    op.create_index("ix_api_tokens_name", "api_tokens", ["name"])
    op.create_table(
        "share_links",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.Integer, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("label", sa.String(200)),
        sa.Column("allow_comments", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("allow_approve", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_by", sa.String(64)),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("expires_at", sa.DateTime),
        sa.Column("revoked_at", sa.DateTime),
    )
    op.create_index("ix_share_links_job", "share_links", ["job_id"])
    op.create_table(
        "comments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.Integer, nullable=False),
        sa.Column("scene_number", sa.Integer),
        sa.Column("kind", sa.String(16), nullable=False, server_default="comment"),
        sa.Column("author", sa.String(100), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("via", sa.String(100)),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_comments_job", "comments", ["job_id"])
    op.create_table(
        "server_keys",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    with op.batch_alter_table("generated_videos") as batch:
        batch.add_column(sa.Column("owner", sa.String(64)))
        batch.add_column(sa.Column("approved_by", sa.String(200)))
    op.create_index("ix_generated_videos_owner", "generated_videos", ["owner", "status"])


def downgrade() -> None:
    op.drop_index("ix_generated_videos_owner", "generated_videos")
    with op.batch_alter_table("generated_videos") as batch:
        batch.drop_column("approved_by")
        batch.drop_column("owner")
    op.drop_table("server_keys")
    op.drop_index("ix_comments_job", "comments")
    op.drop_table("comments")
    op.drop_index("ix_share_links_job", "share_links")
    op.drop_table("share_links")
    op.drop_index("ix_api_tokens_name", "api_tokens")
    op.drop_table("api_tokens")
