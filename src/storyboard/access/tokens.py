"""API tokens: made by ``storyboard tokens create``, shown once, kept only as a SHA-256.

A token is 256 random bits, so a plain SHA-256 is enough to keep it (no salt or slow hash is
needed against guessing: there is nothing to guess); it is looked up by its hash and the hash
compared again in constant time. One live token per name: the name is the owner of the jobs
made with it, so a token is rotated by revoking it and creating the name again (the jobs stay
the name's).

Once any token has been created the server is no longer in single-user mode, even when every
token is revoked: revoking the last token must lock the server, not open it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from ..db.models import ApiToken, utcnow
from ..errors import InvalidRequestError

__all__ = [
    "TOKEN_PREFIX",
    "TokenInfo",
    "any_tokens",
    "create_token",
    "hash_secret",
    "list_tokens",
    "resolve_token",
    "revoke_token",
]

TOKEN_PREFIX = "sb_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_TOUCH_EVERY = timedelta(minutes=1)  # last_used_at: a write a minute at most, not per request
_seen_tokens: set[str] = set()  # engines (by URL) known to have tokens: it never goes back


@dataclass(frozen=True)
class TokenInfo:
    name: str
    admin: bool
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _info(row: ApiToken) -> TokenInfo:
    return TokenInfo(row.name, row.admin, row.created_at, row.revoked_at, row.last_used_at)


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidRequestError("name", "1-64 characters: letters, digits and . _ @ -, "
                                  "starting with a letter or digit")
    return name


def create_token(engine: Engine, name: str, *, admin: bool = False) -> tuple[str, TokenInfo]:
    """A new token for ``name`` (refused while the name has a live one): the token itself,
    to be shown once, and what is kept."""
    check_name(name)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with Session(engine, expire_on_commit=False) as session, session.begin():
        live = session.scalar(select(ApiToken.id).where(ApiToken.name == name,
                                                        ApiToken.revoked_at.is_(None)))
        if live is not None:
            raise InvalidRequestError("name", f"{name!r} already has a token; revoke it first "
                                      f"(storyboard tokens revoke {name}) to make a new one")
        row = ApiToken(name=name, token_hash=hash_secret(token), admin=admin,
                       created_at=utcnow())
        session.add(row)
    _seen_tokens.add(str(engine.url))
    return token, _info(row)


def list_tokens(engine: Engine) -> list[TokenInfo]:
    with Session(engine) as session:
        return [_info(r) for r in session.scalars(select(ApiToken).order_by(ApiToken.id))]


def revoke_token(engine: Engine, name: str) -> bool:
    """Revoke ``name``'s live token; False when it has none."""
    with engine.begin() as conn:
        changed = conn.execute(update(ApiToken).where(
            ApiToken.name == name, ApiToken.revoked_at.is_(None)).values(
            revoked_at=utcnow())).rowcount
    return changed > 0


def any_tokens(engine: Engine) -> bool:
    """Whether a token was ever created here (then every request needs one)."""
    key = str(engine.url)
    if key in _seen_tokens:
        return True
    with engine.connect() as conn:
        found = conn.execute(select(ApiToken.id).limit(1)).first() is not None
    if found:
        _seen_tokens.add(key)
    return found


def resolve_token(engine: Engine, token: str) -> TokenInfo | None:
    """The live token ``token`` is, or None (unknown or revoked)."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    digest = hash_secret(token)
    with Session(engine) as session:
        row = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest,
                                                    ApiToken.revoked_at.is_(None)))
        if row is None or not hmac.compare_digest(row.token_hash, digest):
            return None
        info = _info(row)
    now = utcnow()
    if info.last_used_at is None or now - info.last_used_at > _TOUCH_EVERY:
        with engine.begin() as conn:
            conn.execute(update(ApiToken).where(ApiToken.token_hash == digest)
                         .values(last_used_at=now))
    return info
