"""The spec's storyboard columns: progress, storyboard data, approval, cost, errors.

Revision ID: 0002_storyboard_columns
Revises: 0001_base
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_storyboard_columns"
down_revision = "0001_base"
branch_labels = None
depends_on = None


def upgrade() -> None:
    existing = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("generated_videos")}
    columns = [
        sa.Column("progress", sa.Text),
        sa.Column("storyboard_data", sa.Text),
        sa.Column("approved", sa.Boolean, server_default=sa.false(), nullable=False),
        sa.Column("approved_at", sa.DateTime),
        sa.Column("estimated_cost", sa.Float, server_default="0.0", nullable=False),
        sa.Column("actual_cost", sa.Float),
        sa.Column("error_message", sa.Text),
        # SQLite cannot add a column whose default is CURRENT_TIMESTAMP; it is backfilled below
        # and the application sets it on every write.
        sa.Column("updated_at", sa.DateTime),
    ]
    # An older table may already carry some of these (added by hand from the spec's SQL).
    for column in columns:
        if column.name not in existing:
            op.add_column("generated_videos", column)
    op.execute("UPDATE generated_videos SET updated_at = created_at WHERE updated_at IS NULL")


def downgrade() -> None:
    with op.batch_alter_table("generated_videos") as batch:
        for name in ("updated_at", "error_message", "actual_cost", "estimated_cost",
                     "approved_at", "approved", "storyboard_data", "progress"):
            batch.drop_column(name)
