"""Schema: migrations create it, adopt and upgrade an older table in place, keep every row."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from storyboard import get_job, save_generated_video
from storyboard.config import Settings
from storyboard.db import get_engine
from storyboard.db.migrate import current_revision, head_revision

SPEC_COLUMNS = {"progress", "storyboard_data", "approved", "approved_at", "estimated_cost",
                "actual_cost", "error_message", "updated_at"}
BASE_COLUMNS = {"id", "prompt", "video_url", "model_id", "parameters", "status", "created_at"}


def _columns(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {row[1] for row in conn.execute("PRAGMA table_info(generated_videos)")}


def _old_platform_table(db: Path) -> None:
    db.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE generated_videos (id INTEGER PRIMARY KEY AUTOINCREMENT, prompt TEXT NOT"
            " NULL, video_url TEXT, model_id TEXT, parameters TEXT, status TEXT, created_at"
            " TIMESTAMP DEFAULT CURRENT_TIMESTAMP)"
        )
        conn.executemany(
            "INSERT INTO generated_videos (prompt, video_url, model_id, parameters, status)"
            " VALUES (?, ?, ?, ?, ?)",
            [("old video one", "https://x/1.mp4", "v1", '{"duration": 10}', "completed"),
             ("old video two", "", "v1", "{}", "failed")],
        )


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "storyboard", *args], capture_output=True,
                          text=True, timeout=60, check=False)


def test_db_upgrade_creates_schema(settings: Settings) -> None:
    result = _cli("db", "upgrade")
    assert result.returncode == 0, result.stderr
    db = settings.data_dir / "storyboard.db"
    assert _columns(db) == BASE_COLUMNS | SPEC_COLUMNS | {"lease_owner", "lease_expires_at",
                                                         "dispatched_at", "plan",
                                                         "possible_cost", "owner", "approved_by"}
    again = _cli("db", "upgrade")
    assert again.returncode == 0 and "Database at head" in again.stdout


def test_db_upgrade_adopts_an_older_table_and_keeps_rows(settings: Settings) -> None:
    db = settings.data_dir / "storyboard.db"
    _old_platform_table(db)
    assert not SPEC_COLUMNS & _columns(db)
    result = _cli("db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert "adopted existing generated_videos table" in result.stdout
    assert _columns(db) >= BASE_COLUMNS | SPEC_COLUMNS
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT id, prompt, video_url, status, approved, estimated_cost FROM generated_videos"
            " ORDER BY id"
        ).fetchall()
    assert rows == [(1, "old video one", "https://x/1.mp4", "completed", 0, 0.0),
                    (2, "old video two", "", "failed", 0, 0.0)]


def test_other_commands_upgrade_by_themselves(settings: Settings) -> None:
    db = settings.data_dir / "storyboard.db"
    _old_platform_table(db)
    job_id = save_generated_video("new", "", "v2", {"duration": 15}, "pending")
    assert job_id == 3
    old = get_job(1)
    assert old is not None and old["prompt"] == "old video one" and old["approved"] is False
    engine = get_engine(settings)
    assert current_revision(engine) == head_revision(engine)


def test_table_without_some_spec_columns_added_by_hand(settings: Settings) -> None:
    db = settings.data_dir / "storyboard.db"
    _old_platform_table(db)
    with sqlite3.connect(db) as conn:  # someone already ran part of the spec's SQL by hand
        conn.execute("ALTER TABLE generated_videos ADD COLUMN progress TEXT")
    assert _cli("db", "upgrade").returncode == 0
    assert _columns(db) >= BASE_COLUMNS | SPEC_COLUMNS


def test_the_ledger_starts_where_jobs_made_before_it_were(settings: Settings) -> None:
    """A job that recorded its cost before the prediction ledger existed keeps it: the upgrade
    gives it one 'earlier' row, so the ledger's sum is the job's cost from then on."""
    from alembic import command

    from storyboard.db.engine import _create
    from storyboard.db.ledger import job_costs, job_ledger
    from storyboard.db.migrate import alembic_config

    engine = _create(settings.resolved_database_url, settings)
    command.upgrade(alembic_config(engine), "0004_plans")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO generated_videos (prompt, status, created_at, updated_at, actual_cost, "
            "estimated_cost, approved) VALUES ('before', 'storyboard_ready', '2026-11-30 10:00:00',"
            " '2026-11-30 10:01:00', 0.018, 0.018, 0)")
    command.upgrade(alembic_config(engine), "head")
    (row,) = job_ledger(engine, 1)
    assert (row.kind, row.status, row.billed_cost, row.possible_cost) == (
        "earlier", "succeeded", 0.018, 0.0)
    assert job_costs(engine, 1) == (0.018, 0.0)
    engine.dispose()
