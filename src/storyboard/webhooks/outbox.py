"""The durable webhook outbox: messages written with the job's state, delivered by any worker.

A message is a row of ``webhook_outbox`` (``WebhookMessage``), inserted by ``enqueue_statement``
in the transaction that changes the job, so an event exists exactly when the state it reports
was committed. Its ``id`` (``msg_...``) is the ``webhook-id`` of every attempt, and its
``payload`` the exact body, so receivers can deduplicate: delivery is at least once.

``deliver_due`` claims due messages for a short lease (``claim_lease``: twice the webhook timeout
plus 30 s, each attempt being bounded by the timeout as a whole), POSTs each, and records the
outcome. A worker killed mid-delivery records nothing: its claim lapses and another worker (or
itself, restarted) delivers the message then. Claiming is one ``UPDATE ... WHERE id IN (SELECT
... LIMIT n) RETURNING``: on PostgreSQL the inner select takes ``FOR UPDATE SKIP LOCKED``, so
workers claim different rows without waiting on each other; SQLite runs one writer at a time, so
the single statement is atomic there as it stands.

Retries (``RetryPolicy``; the default schedule): a failed attempt n waits
5 s, 30 s, 2 min, 5 min, 10 min, 20 min, 30 min, 1 h, then 1 h for every later attempt, or the
receiver's ``Retry-After`` on a 429/503 when longer (at most 1 h). A message is given up after
10 failed attempts *and* at least an hour since it was enqueued: with the schedule, the tenth
attempt comes about 3 h 8 min after the first. Any answer other than 2xx is a failure (3xx
included: redirects are not followed). A URL refused by the address policy is given up at once:
what it resolves to is not going to become public, and ``last_error`` says why.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import httpx
from sqlalchemy import ColumnElement, Engine, Insert, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from ..db.models import WebhookMessage, utcnow
from ..transport import parse_retry_after
from .addresses import Resolver, check_url, checked_addresses, host_and_port, shown_url
from .errors import WebhookURLError
from .signing import signature_headers, signing_key

if TYPE_CHECKING:
    from ..config import Settings

__all__ = [
    "DEFAULT_POLICY",
    "EVENTS",
    "Message",
    "RetryPolicy",
    "claim_due",
    "claim_lease",
    "deliver_due",
    "enqueue",
    "enqueue_statement",
    "new_message_id",
    "pending_count",
    "record_delivered",
    "record_failure",
]

log = logging.getLogger("storyboard.webhooks")

EVENTS = ("start", "scene", "completed")
_ERROR_CHARS = 500  # of a failure kept in ``last_error``
_EXCERPT_BYTES = 200  # of a failed answer's body, quoted in the error


@dataclass(frozen=True)
class RetryPolicy:
    """When to try a failed message again, and when to give up.

    ``delays[n-1]`` seconds after failed attempt n (the last delay repeats); given up after
    ``max_attempts`` attempts once ``min_span`` seconds have passed since it was enqueued (both
    must hold: a burst of quick failures does not give up early, nor does a slow one)."""

    delays: tuple[float, ...] = (5, 30, 120, 300, 600, 1200, 1800, 3600, 3600)
    max_attempts: int = 10
    min_span: float = 3600.0
    # A receiver's Retry-After is honoured up to this many seconds.
    max_retry_after: float = 3600.0

    def __post_init__(self) -> None:
        if not self.delays or min(self.delays) < 0 or self.max_attempts < 1:
            raise ValueError("RetryPolicy needs delays >= 0 and max_attempts >= 1")

    def delay(self, attempts: int) -> float:
        """Seconds to wait after ``attempts`` failed attempts."""
        return self.delays[min(max(attempts, 1), len(self.delays)) - 1]

    def gives_up(self, attempts: int, age: float) -> bool:
        return attempts >= self.max_attempts and age >= self.min_span


DEFAULT_POLICY = RetryPolicy()


@dataclass(frozen=True)
class Message:
    """A claimed message: ``attempts`` counts this attempt (claims count, so a message that
    kills its worker every time is given up too)."""

    id: str
    job_id: int
    event: str
    url: str
    payload: str
    attempts: int
    created_at: datetime


@dataclass
class _Outcome:
    error: str | None = None  # None: delivered
    give_up: bool = False
    retry_after: float | None = None
    status: int | None = None


def new_message_id() -> str:
    """A fresh ``webhook-id``: ``msg_`` and 128 random bits."""
    return "msg_" + secrets.token_hex(16)


def claim_lease(settings: Settings) -> float:
    """Seconds a claim holds: longer than an attempt can take (each is bounded by the timeout
    as a whole), short enough that a dead worker's messages are soon delivered by another."""
    return 2 * settings.webhook_timeout + 30


def enqueue_statement(
    *, job_id: int, event: str, url: str, payload: str, now: datetime | None = None,
    msg_id: str | None = None,
) -> Insert:
    """The INSERT of one message, due at once: run it in the transaction that changes the
    job, so the event is written exactly when the state it reports is."""
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}; one of {', '.join(EVENTS)}")
    now = now or utcnow()
    return insert(WebhookMessage).values(
        id=msg_id or new_message_id(), job_id=job_id, event=event, url=url, payload=payload,
        attempts=0, next_attempt_at=now, created_at=now)


def enqueue(
    engine: Engine, *, job_id: int, event: str, url: str, payload: str,
    now: datetime | None = None,
) -> str:
    """``enqueue_statement`` in a transaction of its own; returns the message's id."""
    msg_id = new_message_id()
    with engine.begin() as conn:
        conn.execute(enqueue_statement(job_id=job_id, event=event, url=url, payload=payload,
                                       now=now, msg_id=msg_id))
    return msg_id


def _due(now: datetime) -> ColumnElement[bool]:
    w = WebhookMessage
    return (w.delivered_at.is_(None) & w.gave_up_at.is_(None) & (w.next_attempt_at <= now)
            & (w.claimed_until.is_(None) | (w.claimed_until < now)))


def claim_due(
    engine: Engine, *, owner: str, now: datetime, limit: int, lease_seconds: float
) -> list[Message]:
    """Claim up to ``limit`` due messages (oldest due first) for ``lease_seconds``: not
    delivered, not given up, due, and unclaimed or with a lapsed claim."""
    w = WebhookMessage
    pick = select(w.id).where(_due(now)).order_by(w.next_attempt_at).limit(limit)
    if engine.dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    stmt = (
        update(w)
        .where(w.id.in_(pick), _due(now))
        .values(claimed_by=owner, claimed_until=now + timedelta(seconds=lease_seconds),
                attempts=w.attempts + 1)
        .returning(w.id, w.job_id, w.event, w.url, w.payload, w.attempts, w.created_at)
    )
    with engine.begin() as conn:
        rows = conn.execute(stmt).all()
    messages = [Message(*row) for row in rows]
    return sorted(messages, key=lambda m: m.created_at)


def pending_count(engine: Engine) -> int:
    """Messages neither delivered nor given up (due now or later, claimed or not)."""
    w = WebhookMessage
    stmt = select(func.count()).select_from(w).where(w.delivered_at.is_(None),
                                                     w.gave_up_at.is_(None))
    with engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


def record_delivered(engine: Engine, *, msg_id: str, now: datetime) -> bool:
    """Mark the message delivered (whoever holds its claim: it was delivered all the same)."""
    w = WebhookMessage
    stmt = (update(w).where(w.id == msg_id, w.delivered_at.is_(None))
            .values(delivered_at=now, claimed_by=None, claimed_until=None, last_error=None))
    with engine.begin() as conn:
        return conn.execute(stmt).rowcount > 0


def record_failure(
    engine: Engine, *, message: Message, owner: str, now: datetime, error: str,
    policy: RetryPolicy = DEFAULT_POLICY, give_up: bool = False,
    retry_after: float | None = None,
) -> datetime | None:
    """Record a failed attempt: the next attempt's time, or None when the message was given
    up. Written only while the claim is still ``owner``'s (a lapsed claim taken over by another
    worker is that worker's to record)."""
    age = (now - message.created_at).total_seconds()
    w = WebhookMessage
    values: dict[str, object] = {"last_error": error[:_ERROR_CHARS], "claimed_by": None,
                                 "claimed_until": None}
    next_at: datetime | None = None
    if give_up or policy.gives_up(message.attempts, age):
        values["gave_up_at"] = now
    else:
        wait = policy.delay(message.attempts)
        if retry_after is not None:
            wait = max(wait, min(retry_after, policy.max_retry_after))
        next_at = now + timedelta(seconds=wait)
        values["next_attempt_at"] = next_at
    stmt = (update(w).where(w.id == message.id, w.claimed_by == owner, w.delivered_at.is_(None))
            .values(**values))
    with engine.begin() as conn:
        conn.execute(stmt)
    return next_at


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _excerpt(response: httpx.Response) -> str:
    # A few bytes of a failed answer help whoever debugs the receiver; never the whole body.
    chunk = b""
    async for part in response.aiter_raw():
        chunk += part
        if len(chunk) >= _EXCERPT_BYTES:
            break
    text = " ".join(chunk[:_EXCERPT_BYTES].decode("utf-8", "replace").split())
    return f": {text}" if text else ""


async def _attempt(message: Message, *, key: bytes, settings: Settings,
                   client: httpx.AsyncClient, resolve: Resolver | None) -> _Outcome:
    """POST the message once; what happened."""
    body = message.payload.encode()
    try:
        # The whole attempt (resolving, connecting, sending, the answer) is bounded, so the
        # claim (``claim_lease``) outlasts it; httpx's own timeout is per operation.
        async with asyncio.timeout(settings.webhook_timeout):
            # Checked here whatever client is used (and a row written without the submission's
            # check is judged too); the webhook client checks again as it connects, to the
            # address it connects to.
            check_url(message.url, allow_private=settings.webhook_allow_private)
            host, port = host_and_port(message.url)
            await checked_addresses(host, port, allow_private=settings.webhook_allow_private,
                                    resolve=resolve)
            # The wall clock, not the scheduling clock: the receiver checks it against its own.
            headers = {**signature_headers(key, message.id, body, now=time.time()),
                       "content-type": "application/json"}
            request = client.build_request("POST", message.url, content=body, headers=headers)
            response = await client.send(request, stream=True, follow_redirects=False)
            try:
                if 200 <= response.status_code < 300:
                    return _Outcome(status=response.status_code)
                excerpt = await _excerpt(response)
            finally:
                await response.aclose()
    except WebhookURLError as exc:
        return _Outcome(error=exc.message, give_up=True)
    except TimeoutError:
        return _Outcome(error=f"no answer within {settings.webhook_timeout:g}s")
    except (httpx.HTTPError, OSError) as exc:
        return _Outcome(error=_describe(exc))
    status = response.status_code
    retry_after = None
    if status in (429, 503):
        retry_after = parse_retry_after(response.headers, "")
    if 300 <= status < 400:
        where = response.headers.get("location", "")
        excerpt = f" to {shown_url(where)} (redirects are not followed; give the final URL)" \
            if where else " (redirects are not followed)"
    return _Outcome(error=f"HTTP {status}{excerpt}", retry_after=retry_after, status=status)


def _wait_text(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:g}s"
    if seconds < 7200:
        return f"{seconds / 60:g} min"
    return f"{seconds / 3600:g} h"


async def _deliver(engine: Engine, message: Message, *, owner: str, key: bytes,
                   settings: Settings, client: httpx.AsyncClient, clock: Callable[[], datetime],
                   policy: RetryPolicy, resolve: Resolver | None) -> bool:
    outcome = await _attempt(message, key=key, settings=settings, client=client,
                             resolve=resolve)
    where = shown_url(message.url)
    what = f"webhook {message.id} (job {message.job_id}, {message.event}) to {where}"
    now = clock()
    try:
        if outcome.error is None:
            await asyncio.to_thread(record_delivered, engine, msg_id=message.id, now=now)
            log.info("%s: delivered (attempt %d, HTTP %s)", what, message.attempts,
                     outcome.status)
            return True
        next_at = await asyncio.to_thread(
            record_failure, engine, message=message, owner=owner, now=now, error=outcome.error,
            policy=policy, give_up=outcome.give_up, retry_after=outcome.retry_after)
    except SQLAlchemyError as exc:
        # The outcome is lost with the claim: once it lapses the message is tried again (a
        # delivered one delivered twice, which the webhook-id lets receivers see).
        log.warning("%s: attempt %d done but not recorded (%s); it will be retried", what,
                    message.attempts, _describe(exc))
        return outcome.error is None
    if next_at is None:
        log.error("%s: gave up after %d attempts: %s", what, message.attempts, outcome.error)
    else:
        wait = (next_at - now).total_seconds()
        log.warning("%s: attempt %d failed (%s); next attempt in %s", what, message.attempts,
                    outcome.error, _wait_text(wait))
    return False


async def deliver_due(
    engine: Engine,
    settings: Settings,
    *,
    owner: str,
    client: httpx.AsyncClient,
    now: datetime | None = None,
    limit: int = 50,
    policy: RetryPolicy = DEFAULT_POLICY,
    resolve: Resolver | None = None,
) -> int:
    """Claim the due messages (up to ``limit``), POST them at once, each signed with
    ``STORYBOARD_WEBHOOK_SECRET`` (``ConfigurationError`` when it is unset or malformed, before
    anything is claimed), and record each outcome. Returns how many were attempted.

    ``client``: ``webhook_client(settings)`` (any httpx client works, but only that one pins the
    checked address). ``now``: the scheduling clock (tests move it instead of waiting); the
    signatures' timestamps are always the wall clock's. ``resolve``: a resolver for tests."""
    key = signing_key(settings)
    clock: Callable[[], datetime] = (lambda: now) if now is not None else utcnow
    messages = await asyncio.to_thread(claim_due, engine, owner=owner, now=clock(),
                                       limit=limit, lease_seconds=claim_lease(settings))
    if messages:
        await asyncio.gather(*(
            _deliver(engine, m, owner=owner, key=key, settings=settings, client=client,
                     clock=clock, policy=policy, resolve=resolve)
            for m in messages))
    return len(messages)
