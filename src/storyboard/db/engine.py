"""Engines per database URL, with the schema brought up to date on first use."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from ..config import Settings
from ..errors import ConfigurationError

__all__ = ["dispose_engines", "get_engine", "shown_url"]

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


def shown_url(url: str) -> str:
    """The database URL fit for a message: no password."""
    if _ambiguous_userinfo(url):
        return "(not shown: its password may hold an '@')"
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "(unparseable)"


def _ambiguous_userinfo(url: str) -> bool:
    # "user:pa@ss@host" parses as host "ss@host": part of the password would show (and be
    # sent to DNS). Such a URL must encode the '@' as %40. (An '@' in the user name, as in
    # Azure's "user@server", parses as meant.)
    netloc = url.partition("://")[2].partition("/")[0]
    userinfo = netloc.rpartition("@")[0]
    return "@" in userinfo.partition(":")[2]


def _create(url: str, settings: Settings) -> Engine:
    """An engine for ``url``; a URL that cannot work is a ConfigurationError saying why."""
    if _ambiguous_userinfo(url):
        raise ConfigurationError("DATABASE_URL has an '@' in its password: write it as %40")
    try:
        return _engine_for(url)
    except ConfigurationError:
        raise
    except (ArgumentError, ValueError, ImportError) as exc:  # no URL, bad port, no driver
        raise ConfigurationError(
            f"DATABASE_URL {shown_url(url)} cannot be used ({exc}); e.g. "
            "postgresql+psycopg://user@host/db, or unset it for SQLite under DATA") from exc
    except OSError as exc:
        raise ConfigurationError(
            f"cannot create the database's folder ({exc.strerror}: {exc.filename}); "
            "set DATA to a writable directory") from exc


def _engine_for(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1] if "///" in url else ""
        if not path or path == ":memory:":
            # Each pooled connection would get a database of its own, none with the schema.
            raise ConfigurationError("DATABASE_URL: an in-memory SQLite database cannot be "
                                     "shared by the API and its workers; give a file, e.g. "
                                     "sqlite:////var/lib/storyboard/storyboard.db")
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
            engine = _create(url, settings)
            ensure_schema_or_explain(engine)
            _engines[url] = engine
    return engine


def ensure_schema_or_explain(engine: Engine) -> list[str]:
    """Bring the schema up to date; a database that cannot be reached or written is a
    ConfigurationError naming it and the reason."""
    from .migrate import ensure_schema

    try:
        return ensure_schema(engine)
    except (SQLAlchemyError, OSError) as exc:
        engine.dispose()
        reason = getattr(exc, "orig", None) or exc
        first_line = str(reason).strip().splitlines()[0] if str(reason).strip() else type(
            reason).__name__
        raise ConfigurationError(
            f"cannot use the database {shown_url(str(engine.url))}: {first_line}") from exc


def dispose_engines() -> None:
    """Close every pooled connection (tests, and before a fork)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
