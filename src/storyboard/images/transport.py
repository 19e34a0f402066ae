"""The HTTP transport under the image clients: httpx's API on aiohttp's connection pool.

At hundreds of predictions in flight (each holding a connection through ``Prefer: wait``),
httpx's own pool spends about twice the CPU per request of aiohttp's (measured in bench/: the
100-job drain). httpx-aiohttp plugs aiohttp in as an httpx transport, so the clients, their
tests and any injected transport keep speaking httpx.
"""

from __future__ import annotations

import ssl

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

__all__ = ["PooledTransport"]


class PooledTransport(AiohttpTransport):
    """AiohttpTransport with connection failures reported as the httpx errors they are.

    httpx-aiohttp maps every ``aiohttp.ClientConnectionError`` to ``httpx.ConnectTimeout``, so a
    refused connection would read "timeout" in a person's error message; this corrects that.
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
            if isinstance(cause, aiohttp.ClientConnectionError):
                raise httpx.ConnectError(str(cause), request=request) from cause
            raise
