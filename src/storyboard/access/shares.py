"""Share links: a reviewer's way into one board without a token.

The link is ``/s#<token>``: the token rides in the URL's fragment, which browsers never send to
a server (so it is in no access log or Referer); the studio reads it and sends it as a bearer
token. It is kept only as a SHA-256, may expire, and can be revoked. What it allows: reading the
board (frames, plan, animatic, comments), commenting (unless turned off), and approving or
requesting changes (only if the link says so).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from ..db.models import ShareLink, utcnow
from .tokens import hash_secret

__all__ = ["SHARE_PREFIX", "ShareInfo", "create_share", "list_shares", "resolve_share",
           "revoke_share"]

SHARE_PREFIX = "sh_"


@dataclass(frozen=True)
class ShareInfo:
    id: int
    job_id: int
    label: str | None
    allow_comments: bool
    allow_approve: bool
    created_by: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def live(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


def _info(row: ShareLink) -> ShareInfo:
    return ShareInfo(row.id, row.job_id, row.label, row.allow_comments, row.allow_approve,
                     row.created_by, row.created_at, row.expires_at, row.revoked_at)


def create_share(engine: Engine, job_id: int, *, created_by: str | None, label: str | None,
                 allow_comments: bool, allow_approve: bool,
                 expires_at: datetime | None) -> tuple[str, ShareInfo]:
    token = SHARE_PREFIX + secrets.token_urlsafe(24)
    with Session(engine, expire_on_commit=False) as session, session.begin():
        row = ShareLink(job_id=job_id, token_hash=hash_secret(token), label=label,
                        allow_comments=allow_comments, allow_approve=allow_approve,
                        created_by=created_by, created_at=utcnow(), expires_at=expires_at)
        session.add(row)
    return token, _info(row)


def list_shares(engine: Engine, job_id: int) -> list[ShareInfo]:
    with Session(engine) as session:
        rows = session.scalars(select(ShareLink).where(ShareLink.job_id == job_id)
                               .order_by(ShareLink.id))
        return [_info(r) for r in rows]


def revoke_share(engine: Engine, job_id: int, share_id: int) -> bool:
    with engine.begin() as conn:
        return conn.execute(update(ShareLink).where(
            ShareLink.id == share_id, ShareLink.job_id == job_id,
            ShareLink.revoked_at.is_(None)).values(revoked_at=utcnow())).rowcount > 0


def resolve_share(engine: Engine, token: str) -> ShareInfo | None:
    """The live share link ``token`` opens, or None (unknown, revoked or expired)."""
    if not token.startswith(SHARE_PREFIX):
        return None
    digest = hash_secret(token)
    with Session(engine) as session:
        row = session.scalar(select(ShareLink).where(ShareLink.token_hash == digest))
        if row is None or not hmac.compare_digest(row.token_hash, digest):
            return None
        info = _info(row)
    return info if info.live(utcnow()) else None
