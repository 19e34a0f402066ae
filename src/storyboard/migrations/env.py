"""Alembic environment: runs on the engine the caller hands over (see storyboard.db.migrate)."""

from __future__ import annotations

from alembic import context

from storyboard.db.models import Base

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    # SQLite cannot alter columns in place; batch mode copies the table instead.
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    if connection.dialect.name == "postgresql":
        # Several workers may start at once: one migrates, the others wait for it.
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7268511)")
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
