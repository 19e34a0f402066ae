"""Delivery and cost control: the image cache, the webhook outbox, and the daily budget's days.

Revision ID: 0006_cache_outbox_budget
Revises: 0005_prediction_ledger
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_cache_outbox_budget"
down_revision = "0005_prediction_ledger"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "image_cache",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("model", sa.String(200)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("job_id", sa.Integer),
        sa.Column("scene_number", sa.Integer),
        sa.Column("image_url", sa.Text),
        sa.Column("source_url", sa.Text),
        sa.Column("prediction_id", sa.String(128)),
        sa.Column("claimed_by", sa.String(128)),
        sa.Column("claimed_until", sa.DateTime),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime),
    )
    op.create_table(
        "webhook_outbox",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("job_id", sa.Integer, nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime, nullable=False),
        sa.Column("claimed_by", sa.String(128)),
        sa.Column("claimed_until", sa.DateTime),
        sa.Column("delivered_at", sa.DateTime),
        sa.Column("gave_up_at", sa.DateTime),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_webhook_outbox_due", "webhook_outbox", ["delivered_at", "next_attempt_at"])
    op.create_index("ix_webhook_outbox_job", "webhook_outbox", ["job_id"])
    op.create_table(
        "budget_days",
        sa.Column("day", sa.String(10), primary_key=True),  # YYYY-MM-DD, UTC
        sa.Column("touched_at", sa.DateTime),
    )


def downgrade() -> None:
    op.drop_table("budget_days")
    op.drop_index("ix_webhook_outbox_job", "webhook_outbox")
    op.drop_index("ix_webhook_outbox_due", "webhook_outbox")
    op.drop_table("webhook_outbox")
    op.drop_table("image_cache")
