"""HTTP plumbing shared by the model clients (Replicate, Cog): a fast transport and the client
lifecycle.

The transport is httpx's API on aiohttp's connection pool.

At hundreds of predictions in flight (each holding a connection through ``Prefer: wait``),
httpx's own pool spends about twice the CPU per request of aiohttp's (measured in bench/: the
100-job drain). httpx-aiohttp plugs aiohttp in as an httpx transport, so the clients, their
tests and any injected transport keep speaking httpx.
"""

from __future__ import annotations

import asyncio
import email.utils
import re
import ssl
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Self

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

__all__ = ["HttpClient", "PooledTransport", "parse_retry_after"]

# Replicate's 429 body says "Request was throttled. Expected available in 1 second."
_AVAILABLE_IN = re.compile(r"available in (\d+(?:\.\d+)?) seconds?", re.IGNORECASE)


class PooledTransport(AiohttpTransport):
    """AiohttpTransport with connection failures reported as the httpx errors they are.

    httpx-aiohttp maps most ``aiohttp.ClientConnectionError``s to ``httpx.ConnectTimeout``, so a
    refused connection would read "timeout" in a person's error message, and a connection reset
    once made would read as one never made; this corrects both. A reset connection may have
    carried the request (or not: a kept-alive one the server had closed): a create Replicate
    may have acted on must not pass for one it never saw, so it counts as a read error.
    """

    def __init__(self, *, verify: ssl.SSLContext, max_connections: int) -> None:
        super().__init__(verify=verify, limits=httpx.Limits(max_connections=max_connections))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except httpx.ConnectTimeout as exc:
            cause = exc.__cause__
            if isinstance(cause, aiohttp.ServerTimeoutError):
                raise  # a real timeout
            if isinstance(cause, aiohttp.ServerDisconnectedError):
                raise httpx.RemoteProtocolError(str(cause), request=request) from cause
            if isinstance(cause, aiohttp.ClientConnectorError):
                raise httpx.ConnectError(str(cause), request=request) from cause
            if isinstance(cause, aiohttp.ClientConnectionError):  # reset once connected
                raise httpx.ReadError(str(cause), request=request) from cause
            raise


class HttpClient:
    """Base of the HTTP model clients: owns (or borrows) an httpx client, closes what it owns,
    and runs clean-up requests that the caller's cancellation cannot interrupt."""

    def __init__(self, http_client: httpx.AsyncClient | None,
                 make_client: Callable[[], httpx.AsyncClient]) -> None:
        self._owns_http = http_client is None
        self._http: httpx.AsyncClient = http_client if http_client is not None else make_client()
        self._background: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client this object created (never one it was given)."""
        if self._owns_http:
            await self._http.aclose()

    async def _shielded(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` to the end even if the awaiting attempt is cancelled (e.g. cancelling a
        prediction because its attempt timed out)."""
        task = asyncio.ensure_future(work)
        self._background.add(task)  # a shielded task must not be garbage-collected mid-flight
        task.add_done_callback(self._background.discard)
        await asyncio.shield(task)


def parse_retry_after(headers: Mapping[str, str], body: str) -> float | None:
    """Seconds to wait: ``Retry-After`` (seconds or HTTP date), else the body's hint, else None."""
    value = headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        pass
    match = _AVAILABLE_IN.search(body)
    return float(match.group(1)) if match else None
