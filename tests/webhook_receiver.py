"""A webhook receiver for tests: checks each delivery's signature with ``verify``, records it,
and answers an error a scripted number of times before accepting."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from storyboard.webhooks import WebhookVerificationError, verify

from .live_server import serve

__all__ = ["Delivery", "Receiver", "running_receiver"]


@dataclass
class Delivery:
    """One request the receiver got, and what it made of it."""

    headers: dict[str, str]
    body: bytes
    verified: bool
    error: str | None
    answered: int

    @property
    def msg_id(self) -> str:
        return self.headers.get("webhook-id", "")

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """``hold_first`` requests get no answer until ``release`` is set (a receiver that hangs);
    then ``fail_first`` are answered ``fail_status``; then 204. A request whose signature does
    not verify is answered 400 (and recorded). Held requests are recorded as they arrive,
    ``answered`` 0."""

    secret: str
    hold_first: int = 0
    release: threading.Event = field(default_factory=threading.Event)
    fail_first: int = 0
    fail_status: int = 500
    fail_headers: dict[str, str] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def accepted(self) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if 200 <= d.answered < 300]

    async def _hook(self, request: Request) -> Response:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            verify(self.secret, request.headers, body)
            verified, error = True, None
        except WebhookVerificationError as exc:
            verified, error = False, str(exc)
        with self._lock:
            hold = verified and self.hold_first > 0
            if hold:
                self.hold_first -= 1
                self.deliveries.append(Delivery(headers, body, verified, error, 0))
        if hold:
            deadline = time.monotonic() + 15
            while not self.release.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            return Response(b"held", status_code=503)
        with self._lock:
            if not verified:
                status = 400
            elif self.fail_first > 0:
                self.fail_first -= 1
                status = self.fail_status
            else:
                status = 204
            self.deliveries.append(Delivery(headers, body, verified, error, status))
        extra = self.fail_headers if status == self.fail_status else {}
        return Response(b"receiver says no" if status >= 300 else b"", status_code=status,
                        headers=extra)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])


@contextmanager
def running_receiver(secret: str, **options: Any) -> Iterator[Receiver]:
    """A ``Receiver`` served on loopback; its ``url`` is the hook's address."""
    receiver = Receiver(secret, **options)
    with serve(receiver.app()) as base:
        receiver.url = f"{base}/hook"
        try:
            yield receiver
        finally:
            receiver.release.set()  # a held request must end for the server to stop
