"""Engines per database URL, with the schema brought up to date on first use."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Engine, create_engine, event

from ..config import Settings

__all__ = ["dispose_engines", "get_engine"]

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the API read while a job writes; NORMAL sync is durable across process crashes
    # (only an OS crash can lose the last commits); busy_timeout makes writers queue, not fail.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _create(url: str, settings: Settings) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            from pathlib import Path

            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        # No pre-ping: it costs a round trip on every checkout, a third of a progress write.
        # Recycling connections covers servers that drop idle ones.
        engine = create_engine(url, pool_recycle=300, pool_size=10, max_overflow=20)
    return engine


def get_engine(settings: Settings) -> Engine:
    """The engine for the settings' database, created once per process and schema-checked."""
    url = settings.resolved_database_url
    engine = _engines.get(url)
    if engine is not None:
        return engine
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            from .migrate import ensure_schema

            engine = _create(url, settings)
            ensure_schema(engine)
            _engines[url] = engine
    return engine


def dispose_engines() -> None:
    """Close every pooled connection (tests, and before a fork)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
