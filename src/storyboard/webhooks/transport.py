"""The HTTP client webhooks are sent with: the address is checked at connect time, and the
connection goes to the address that was checked.

Checking a host's addresses and then letting the HTTP library resolve it again leaves a window:
a name served with a short TTL can answer a public address to the check and 127.0.0.1 to the
connect (DNS rebinding). Here the check is part of the connect itself: ``GuardedBackend`` is an
httpcore network backend whose ``connect_tcp`` resolves the host, refuses it unless every
address is public, and opens the TCP connection to a checked address. TLS is unchanged (httpcore
still sends the URL's host name as SNI and verifies the certificate against it), and pooled
connections are keyed by host name, so a kept-alive connection was opened to a checked address.

Redirects are never followed (a 3xx counts as a failed attempt): the target would be a URL
nobody checked at submission. Proxies from the environment are not used either: the proxy, not
this check, would pick the address.
"""

from __future__ import annotations

import functools
import socket
import ssl
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import httpcore
import httpx

from .addresses import Resolver, checked_addresses

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["USER_AGENT", "GuardedBackend", "webhook_client"]

USER_AGENT = "Storyboard-Webhooks/1"


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that connects only to checked public addresses (all
    addresses when ``allow_private``). Refusals raise ``AddressRefusedError`` through httpx
    unchanged (it maps only httpcore's errors); a name that does not resolve is an
    ``httpx.ConnectError``."""

    def __init__(self, *, allow_private: bool, resolve: Resolver | None = None,
                 inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.allow_private = allow_private
        self._resolve = resolve
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await checked_addresses(host, port, allow_private=self.allow_private,
                                                resolve=self._resolve)
        except socket.gaierror as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc.strerror or exc}") from exc
        failure: Exception | None = None
        for address in addresses:  # in the resolver's order, as a plain connect would
            try:
                return await self._inner.connect_tcp(address, port, timeout=timeout,
                                                     local_address=local_address,
                                                     socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks are not sent over unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle takes ~50 ms; every webhook client shares one context.
    return httpx.create_ssl_context()


def webhook_client(
    settings: Settings, *, resolve: Resolver | None = None, max_connections: int = 100
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for deliveries: the guarded backend (``allow_private`` from
    ``STORYBOARD_WEBHOOK_ALLOW_PRIVATE``), ``STORYBOARD_WEBHOOK_TIMEOUT`` per operation, no
    redirects, no environment proxies. The caller closes it."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=20,
                          keepalive_expiry=30)
    transport = httpx.AsyncHTTPTransport(verify=_ssl_context(), limits=limits, trust_env=False)
    # httpx (0.28) takes no network backend; its pool is replaced by the same pool with ours,
    # so requests, streaming and the mapping of httpcore's errors stay httpx's own.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=_ssl_context(),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=GuardedBackend(allow_private=settings.webhook_allow_private,
                                       resolve=resolve),
    )
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(settings.webhook_timeout),
        follow_redirects=False,
        trust_env=False,
        headers={"user-agent": USER_AGENT},
    )
