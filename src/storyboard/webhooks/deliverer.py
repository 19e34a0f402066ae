"""The loop that empties the outbox: ``WebhookDeliverer`` on a worker's event loop, or
``DelivererThread`` on its own (beside Dramatiq's workers).

Every worker runs one; they share the outbox through claims (``outbox.py``), so any number may
run, and a message whose worker died is delivered by another once its claim lapses. The loop
looks every ``STORYBOARD_WEBHOOK_POLL_INTERVAL`` seconds, or at once after ``wake()`` (an event
was just enqueued in this process); it outlives database errors (backing off to 30 s) and a
missing secret (it says so once if messages are waiting, and keeps looking: they wait,
unattempted, for a worker that can sign them).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import uuid
import weakref
from datetime import datetime

import httpx
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from ..config import Settings
from ..errors import ConfigurationError
from .addresses import Resolver
from .outbox import DEFAULT_POLICY, RetryPolicy, deliver_due, pending_count
from .transport import webhook_client

__all__ = ["DelivererThread", "WebhookDeliverer", "wake_deliverers"]

log = logging.getLogger("storyboard.webhooks")
_MAX_BACKOFF = 30.0  # seconds between passes while the database cannot be read

_running: weakref.WeakSet[WebhookDeliverer] = weakref.WeakSet()


def wake_deliverers() -> None:
    """Make every deliverer running in this process look at the outbox now (thread-safe):
    call it after committing a transaction that enqueued a message."""
    for deliverer in list(_running):
        deliverer.wake()


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}:webhooks"


class WebhookDeliverer:
    """Delivers due messages until stopped. ``client`` (default: ``webhook_client(settings)``,
    made and closed by ``run``), ``policy`` and ``resolve`` are for tests."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        owner: str | None = None,
        client: httpx.AsyncClient | None = None,
        policy: RetryPolicy = DEFAULT_POLICY,
        limit: int = 50,
        resolve: Resolver | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.owner = owner or _owner()
        self.client = client
        self.policy = policy
        self.limit = limit
        self.resolve = resolve
        self.loop: asyncio.AbstractEventLoop | None = None
        self.passes = 0  # passes made, for tests
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look at the outbox now rather than at the next poll (thread-safe)."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    async def deliver_now(self, *, client: httpx.AsyncClient,
                          now: datetime | None = None) -> int:
        """One pass: ``deliver_due`` with this deliverer's settings; how many were attempted."""
        return await deliver_due(self.engine, self.settings, owner=self.owner, client=client,
                                 now=now, limit=self.limit, policy=self.policy,
                                 resolve=self.resolve)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set; a pass under way finishes first (each attempt is
        bounded by the webhook timeout). Cancelled mid-pass, its claims lapse and the
        messages are delivered later."""
        self.loop = asyncio.get_running_loop()
        _running.add(self)
        client = self.client or webhook_client(self.settings, resolve=self.resolve)
        failures = 0
        said_unconfigured = False
        try:
            while not stop.is_set():
                pause = self.settings.webhook_poll_interval
                self._wake.clear()
                try:
                    attempted = await self.deliver_now(client=client)
                    self.passes += 1
                    failures, said_unconfigured = 0, False
                    if attempted >= self.limit:
                        continue  # a full batch: more may be due now
                except ConfigurationError as exc:
                    # No (or a bad) secret on this worker: nothing can be signed. Messages wait,
                    # unattempted, for a worker that has one. Said once, and only when some are
                    # waiting: a deployment without webhooks has nothing to hear about.
                    pause = _MAX_BACKOFF
                    if not said_unconfigured and await self._waiting():
                        log.error("webhooks are not delivered by this worker: %s", exc)
                        said_unconfigured = True
                except SQLAlchemyError as exc:
                    failures = min(failures + 1, 10)  # the exponent stays small however long
                    pause = min(pause * 2 ** failures, _MAX_BACKOFF)
                    text = str(exc).strip().splitlines()[0] if str(exc).strip() else \
                        type(exc).__name__
                    log.warning("webhooks: cannot read the outbox (%s); trying again in %.1fs",
                                text, pause)
                except Exception:  # a bug must not end delivery for the life of the worker
                    failures = min(failures + 1, 10)
                    pause = min(pause * 2 ** failures, _MAX_BACKOFF)
                    log.exception("webhooks: delivery pass failed; trying again in %.1fs", pause)
                await self._pause(stop, pause, woken=not failures)
        finally:
            _running.discard(self)
            if self.client is None:
                await client.aclose()

    async def _waiting(self) -> bool:
        try:
            return await asyncio.to_thread(pending_count, self.engine) > 0
        except SQLAlchemyError:
            return False

    async def _pause(self, stop: asyncio.Event, seconds: float, *, woken: bool) -> None:
        waits = [asyncio.ensure_future(stop.wait())]
        if woken:  # a wake does not cut a backoff short: the database is what is failing
            waits.append(asyncio.ensure_future(self._wake.wait()))
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()


class DelivererThread:
    """A ``WebhookDeliverer`` on its own event loop in a daemon thread: for processes whose
    jobs run elsewhere (the Dramatiq worker's actors)."""

    def __init__(self, settings: Settings, *, engine: Engine | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self.deliverer: WebhookDeliverer | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="storyboard-webhooks",
                                        daemon=True)

    def _main(self) -> None:
        from .. import eventloop
        from ..db import get_engine

        async def main() -> None:
            self._stop = asyncio.Event()
            self.deliverer = WebhookDeliverer(self.engine or get_engine(self.settings),
                                              self.settings)
            self.deliverer.loop = asyncio.get_running_loop()
            self._ready.set()
            await self.deliverer.run(self._stop)

        try:
            eventloop.run(main())
        finally:
            self._ready.set()  # a failed start must not leave ``start`` waiting

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def wake(self) -> None:
        if self.deliverer is not None:
            self.deliverer.wake()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the pass under way (thread-safe); waits up to ``timeout`` seconds."""
        deliverer, stop = self.deliverer, self._stop
        if deliverer is not None and stop is not None and deliverer.loop is not None \
                and not deliverer.loop.is_closed():
            try:
                deliverer.loop.call_soon_threadsafe(stop.set)
            except RuntimeError:  # the loop closed meanwhile
                pass
        self._thread.join(timeout)
