"""Standard Webhooks signatures: sign a delivery, and verify one (for receivers and tests).

The signed content is ``{webhook-id}.{webhook-timestamp}.{raw body}``; the signature is
HMAC-SHA256 of it with the secret's key, sent as ``v1,<base64>`` in ``webhook-signature``
(several, space-separated, while a secret is being rotated). The secret is ``whsec_`` followed by
the key in base64 (the form Replicate and Svix hand out). A receiver checks it like this::

    from storyboard.webhooks import WebhookVerificationError, verify

    try:
        verify(SECRET, request.headers, raw_body)  # the body's bytes as received
    except WebhookVerificationError:
        return 400
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from ..errors import ConfigurationError
from .errors import InvalidSecretError, WebhookVerificationError

if TYPE_CHECKING:
    from ..config import Settings

__all__ = [
    "SIGNATURE_VERSION",
    "new_secret",
    "parse_secret",
    "sign",
    "signature_headers",
    "signing_key",
    "verify",
]

SIGNATURE_VERSION = "v1"
_PREFIX = "whsec_"
# Below 128 bits a signature is guessable offline; ``new_secret`` makes 256.
_MIN_KEY_BYTES = 16

Secret = str | bytes
Clock = float | datetime | None


def new_secret() -> str:
    """A fresh secret in the ``whsec_<base64>`` form (32 random bytes)."""
    return _PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def parse_secret(secret: Secret) -> bytes:
    """The HMAC key of a secret: ``whsec_<base64>``, or the bare base64 part; bytes are taken
    as the key itself. ``InvalidSecretError`` (which never shows the secret) when it is not."""
    if isinstance(secret, bytes):
        key = secret
    else:
        text = secret.strip().removeprefix(_PREFIX)
        try:
            # Padding is often lost when a secret is pasted; strict otherwise, so a typo is an
            # error here rather than a key that signs what no receiver can check.
            key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidSecretError(
                "the webhook secret is not whsec_ followed by base64; make one with "
                "python -c 'from storyboard.webhooks import new_secret; print(new_secret())'"
            ) from None
    if len(key) < _MIN_KEY_BYTES:
        raise InvalidSecretError(
            f"the webhook secret is too short ({len(key)} bytes, at least {_MIN_KEY_BYTES}); "
            "make one with python -c 'from storyboard.webhooks import new_secret; "
            "print(new_secret())'")
    return key


def signing_key(settings: Settings) -> bytes:
    """The key deliveries are signed with: ``STORYBOARD_WEBHOOK_SECRET``, parsed.
    ``ConfigurationError`` (never showing the secret) when it is unset or malformed."""
    secret = settings.webhook_secret.get_secret_value().strip() if settings.webhook_secret \
        else ""
    if not secret:
        raise ConfigurationError(
            "STORYBOARD_WEBHOOK_SECRET is not set, so webhooks cannot be signed; set it to a "
            "whsec_ secret (python -c 'from storyboard.webhooks import new_secret; "
            "print(new_secret())') and give the same secret to the receivers")
    try:
        return parse_secret(secret)
    except InvalidSecretError as exc:
        raise InvalidSecretError(f"STORYBOARD_WEBHOOK_SECRET: {exc}") from None


def _timestamp(now: Clock) -> int:
    if now is None:
        return int(time.time())
    if isinstance(now, datetime):
        return int(now.timestamp())
    return int(now)


def _digest(key: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    signed = b"%s.%d.%s" % (msg_id.encode(), timestamp, body)
    return hmac.new(key, signed, hashlib.sha256).digest()


def sign(secret: Secret, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` signature of one delivery."""
    key = parse_secret(secret)
    return f"{SIGNATURE_VERSION},{base64.b64encode(_digest(key, msg_id, timestamp, body)).decode()}"


def signature_headers(
    secret: Secret, msg_id: str, body: bytes, now: Clock = None
) -> dict[str, str]:
    """The three Standard Webhooks headers for sending ``body`` as message ``msg_id`` now
    (``now``: a Unix time or datetime; default the wall clock, which the receiver checks)."""
    timestamp = _timestamp(now)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


def _header(headers: Mapping[str, str], name: str) -> str:
    # Any mapping: Starlette's and httpx's headers are case-insensitive, a dict may not be.
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    if value is None or not value.strip():
        raise WebhookVerificationError(f"missing header {name}")
    return value.strip()


def verify(
    secret: Secret,
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    tolerance: float = 300,
    now: Clock = None,
) -> None:
    """Check a delivery: its headers are present, its timestamp within ``tolerance`` seconds of
    ``now`` (a replay guard) and one of its ``v1`` signatures matches ``body`` (the raw bytes
    received, not a re-serialisation). Raises ``WebhookVerificationError`` saying which check
    failed; returns None when the delivery is genuine."""
    key = parse_secret(secret)
    msg_id = _header(headers, "webhook-id")
    stamp = _header(headers, "webhook-timestamp")
    offered = _header(headers, "webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookVerificationError("header webhook-timestamp is not a Unix time") from None
    skew = _timestamp(now) - timestamp
    if skew > tolerance:
        raise WebhookVerificationError(
            f"webhook-timestamp is {skew}s old (tolerance {tolerance:g}s): a replay or a "
            "clock that is off")
    if skew < -tolerance:
        raise WebhookVerificationError(
            f"webhook-timestamp is {-skew}s in the future (tolerance {tolerance:g}s)")
    raw = body.encode() if isinstance(body, str) else body
    expected = _digest(key, msg_id, timestamp, raw)
    versions_seen = False
    for candidate in offered.split():
        version, _, value = candidate.partition(",")
        if version != SIGNATURE_VERSION:
            continue  # other schemes (v1a: asymmetric) are not ours; skip, do not fail
        versions_seen = True
        try:
            digest = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        # Constant time: a byte-by-byte comparison would leak how much of a forgery matched.
        if hmac.compare_digest(digest, expected):
            return
    if not versions_seen:
        raise WebhookVerificationError(f"webhook-signature has no {SIGNATURE_VERSION} signature")
    raise WebhookVerificationError("no signature matches: wrong secret, or the body or "
                                   "headers were changed")
