"""Signed, expiring links to one job's files and events.

An ``<img>`` tag, a download link and an ``EventSource`` cannot send a token, so the API hands
out, with each job it returns, an ``access`` value good for reading that job's media, exports
and events: ``<job id>.<expiry>.<signature>`` (HMAC-SHA256 under a key kept in the database, so
every server of one database accepts what any made). Expiries are whole hours, one to two hours
ahead: the same value for an hour, so browsers keep caching the images.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from ..db.models import ServerKey, utcnow

__all__ = ["job_access", "verify_job_access"]

_HOUR = 3600
_keys: dict[str, bytes] = {}


def _key(engine: Engine) -> bytes:
    url = str(engine.url)
    key = _keys.get(url)
    if key is None:
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        table = ServerKey.__table__
        with engine.begin() as conn:  # the first server to need it makes it; all read it
            conn.execute(dialect.insert(table).values(
                name="links", value=secrets.token_hex(32), created_at=utcnow())
                .on_conflict_do_nothing(index_elements=["name"]))
            value = conn.execute(select(ServerKey.value).where(ServerKey.name == "links"))
            key = bytes.fromhex(value.scalar_one())
        _keys[url] = key
    return key


def _signature(key: bytes, job_id: int, expires: int) -> str:
    mac = hmac.new(key, f"job:{job_id}:{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:24]).decode()


def job_access(engine: Engine, job_id: int, *, now: float | None = None) -> str:
    """A value that opens job ``job_id``'s files and events for the next one to two hours."""
    now = time.time() if now is None else now
    expires = (int(now) // _HOUR + 2) * _HOUR
    return f"{job_id}.{expires}.{_signature(_key(engine), job_id, expires)}"


def verify_job_access(engine: Engine, value: str, *, now: float | None = None) -> int | None:
    """The job ``value`` opens, or None (malformed, expired or not ours)."""
    parts = value.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    job_id, expires = int(parts[0]), int(parts[1])
    now = time.time() if now is None else now
    if expires <= now or job_id > 2**31 - 1:
        return None
    expected = _signature(_key(engine), job_id, expires)
    return job_id if hmac.compare_digest(expected, parts[2]) else None
