"""Plans: the story bible and the planner of each job (JSON), beside its storyboard.

Revision ID: 0004_plans
Revises: 0003_job_leases
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_plans"
down_revision = "0003_job_leases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("generated_videos", sa.Column("plan", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("generated_videos") as batch:
        batch.drop_column("plan")
