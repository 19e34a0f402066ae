"""Signed, expiring links to one job's files and events.

An ``<img>`` tag, a download link and an ``EventSource`` cannot send a token, so the API hands
out, with each job it returns, an ``access`` value good for reading that job's media, exports
and events: ``<job id>.<expiry>.<view>.<signature>`` (HMAC-SHA256 under a key kept in the
database, so every server of one database accepts what any made). The view says whose eyes the
job is shown to through it: ``o``, its owner's (costs and all: the owner's page follows the run
by its event stream), or ``r``, a reviewer's (the board, not the account). Expiries are whole
hours, one to two hours ahead: the same value for an hour, so browsers keep caching the images.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from ..db.models import ServerKey, utcnow

__all__ = ["SignedAccess", "job_access", "verify_job_access"]

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


def _signature(key: bytes, job_id: int, expires: int, view: str) -> str:
    mac = hmac.new(key, f"job:{job_id}:{expires}:{view}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:24]).decode()


@dataclass(frozen=True)
class SignedAccess:
    job_id: int
    owner_view: bool  # the job as its owner sees it (else as a reviewer does)


def job_access(engine: Engine, job_id: int, *, owner_view: bool,
               now: float | None = None) -> str:
    """A value that opens job ``job_id``'s files and events for the next one to two hours."""
    now = time.time() if now is None else now
    expires = (int(now) // _HOUR + 2) * _HOUR
    view = "o" if owner_view else "r"
    return f"{job_id}.{expires}.{view}.{_signature(_key(engine), job_id, expires, view)}"


def verify_job_access(engine: Engine, value: str, *,
                      now: float | None = None) -> SignedAccess | None:
    """What ``value`` opens, or None (malformed, expired or not ours)."""
    parts = value.split(".")
    if (len(parts) != 4 or not parts[0].isdigit() or not parts[1].isdigit()
            or parts[2] not in ("o", "r")):
        return None
    job_id, expires, view = int(parts[0]), int(parts[1]), parts[2]
    now = time.time() if now is None else now
    if expires <= now or job_id > 2**31 - 1:
        return None
    expected = _signature(_key(engine), job_id, expires, view)
    if not hmac.compare_digest(expected, parts[3]):
        return None
    return SignedAccess(job_id, owner_view=view == "o")
