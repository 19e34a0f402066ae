"""The prediction ledger: every prediction a job created or adopted, and what it was billed.

A job's ``actual_cost`` is from now on the sum of its ledger rows; jobs made before the ledger
get one ``earlier`` row holding what they had recorded, so that sum starts where they were.

Revision ID: 0005_prediction_ledger
Revises: 0004_plans
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_prediction_ledger"
down_revision = "0004_plans"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.Integer, nullable=False),
        sa.Column("scene_number", sa.Integer),
        sa.Column("version", sa.Integer),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("model", sa.String(200)),
        sa.Column("prediction_id", sa.String(128)),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("billed_cost", sa.Float, nullable=False, server_default="0"),
        sa.Column("possible_cost", sa.Float, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime),
        sa.UniqueConstraint("provider", "prediction_id", name="uq_predictions_provider_id"),
    )
    op.create_index("ix_predictions_job", "predictions", ["job_id"])
    op.create_index("ix_predictions_created", "predictions", ["created_at"])
    op.add_column("generated_videos",
                  sa.Column("possible_cost", sa.Float, nullable=False, server_default="0"))
    op.execute(
        "INSERT INTO predictions (job_id, kind, provider, status, billed_cost, possible_cost, "
        "created_at, finished_at) SELECT id, 'earlier', 'earlier', 'succeeded', actual_cost, 0, "
        "created_at, updated_at FROM generated_videos WHERE actual_cost > 0")


def downgrade() -> None:
    with op.batch_alter_table("generated_videos") as batch:
        batch.drop_column("possible_cost")
    op.drop_index("ix_predictions_created", "predictions")
    op.drop_index("ix_predictions_job", "predictions")
    op.drop_table("predictions")
