"""Alembic, driven from code: ``storyboard db upgrade`` and the automatic check on first use."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

__all__ = ["BASE_REVISION", "alembic_config", "current_revision", "ensure_schema", "head_revision"]

log = logging.getLogger(__name__)

# The revision that describes the table as the original platform had it, before the spec's
# columns; a database holding that table without Alembic's bookkeeping is stamped with it first.
BASE_REVISION = "0001_base"
_SCRIPTS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    cfg.attributes["engine"] = engine
    return cfg


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def ensure_schema(engine: Engine) -> list[str]:
    """Upgrade the database to the newest schema if needed; returns the steps taken."""
    steps: list[str] = []
    current = current_revision(engine)
    if current is None and inspect(engine).has_table("generated_videos"):
        # An older platform's table: adopt it rather than trying to create it again.
        command.stamp(alembic_config(engine), BASE_REVISION)
        steps.append(f"adopted existing generated_videos table as {BASE_REVISION}")
        current = BASE_REVISION
    head = head_revision(engine)
    if current != head:
        log.info("upgrading database schema %s -> %s", current or "empty", head)
        command.upgrade(alembic_config(engine), "head")
        steps.append(f"upgraded {current or 'empty database'} -> {head}")
    return steps
