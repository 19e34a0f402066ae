"""Execution bookkeeping: which worker holds a job and until when, and when it was dispatched.

Revision ID: 0003_job_leases
Revises: 0002_storyboard_columns
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_job_leases"
down_revision = "0002_storyboard_columns"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("generated_videos", sa.Column("lease_owner", sa.String(128)))
    op.add_column("generated_videos", sa.Column("lease_expires_at", sa.DateTime))
    op.add_column("generated_videos", sa.Column("dispatched_at", sa.DateTime))


def downgrade() -> None:
    with op.batch_alter_table("generated_videos") as batch:
        batch.drop_column("dispatched_at")
        batch.drop_column("lease_expires_at")
        batch.drop_column("lease_owner")
