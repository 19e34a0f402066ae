"""Where webhooks may go: http(s) URLs whose host is a public address.

A webhook URL comes from whoever submits a job, and the server POSTs to it: without this check
anyone could make the server reach its own network (a database's admin port, a cloud's metadata
service at 169.254.169.254). Two checks:

* ``check_url`` at submission: the URL's form (http or https, a host, no ``user:pass@``), and a
  host given as an address (or ``localhost``) is judged at once.
* ``checked_addresses`` at send time: the host is resolved and every address it resolves to
  must be public (not private, loopback, link-local, multicast, reserved, unspecified or shared
  CGNAT space; IPv6 forms that embed an IPv4 address are judged by that address). The webhook
  client (``transport.py``) runs it inside its connect, and connects to the address it checked,
  so a name that re-resolves somewhere else in between (DNS rebinding) gains nothing.

``allow_private`` (``STORYBOARD_WEBHOOK_ALLOW_PRIVATE=1``) turns the address part off, for tests
and for private deployments whose receivers live on the same network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import urlsplit

from .errors import AddressRefusedError, WebhookURLError

__all__ = [
    "Resolver",
    "check_address",
    "check_url",
    "checked_addresses",
    "host_and_port",
    "refused_reason",
    "resolve_host",
    "shown_url",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

_SCHEMES = {"http": 80, "https": 443}
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
# NAT64: the well-known prefix and the local-use one carry an IPv4 address in their last bits.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_ALLOW_HINT = "webhooks are sent to public addresses only"


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    # ::ffff:10.0.0.1, 2002:0a00:0001:: (6to4) and 64:ff9b::a00:1 all reach 10.0.0.1.
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in net for net in _NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def refused_reason(address: str | IPAddress) -> str | None:
    """Why webhooks may not go to ``address`` ("loopback", "private"...), or None if public."""
    ip = ipaddress.ip_address(address.split("%", 1)[0] if isinstance(address, str) else address)
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            reason = refused_reason(inner)
            return None if reason is None else f"{reason}: it embeds {inner}"
    checks: list[tuple[bool, str]] = [
        (ip.is_unspecified, "unspecified"),
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT, "shared (CGNAT)"),
        # Before "private": Python counts 240.0.0.0/4 as both, and "reserved" is what it is.
        (ip.is_reserved, "reserved"),
        (ip.is_private, "private"),
        (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local, "site-local"),
        # The catch-all: documentation, benchmarking and other special-purpose ranges.
        (not ip.is_global, "special-purpose"),
    ]
    return next((label for refused, label in checks if refused), None)


def check_address(address: str | IPAddress, *, host: str | None = None) -> None:
    """``AddressRefusedError`` when ``address`` is not public; ``host`` names where it came
    from in the message."""
    reason = refused_reason(address)
    if reason is None:
        return
    if host and host != str(address):
        message = f"{host} resolves to {address}, which is not public ({reason})"
    else:
        message = f"{address} is not public ({reason})"
    raise AddressRefusedError(f"{message}; {_ALLOW_HINT}", address=str(address))


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def check_url(url: str, *, allow_private: bool) -> None:
    """Check a webhook URL's form when it is submitted: ``WebhookURLError`` (an
    ``InvalidRequestError`` on ``webhook_url``) saying what to fix. Hosts given by name are
    resolved only at send time (``checked_addresses``), since what they resolve to can change."""
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise WebhookURLError("must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number in range
    except ValueError:
        raise WebhookURLError("is not a valid URL (check the host and port)") from None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        got = f"{scheme}://" if scheme else "no scheme"
        raise WebhookURLError(f"must be an http:// or https:// URL (got {got})")
    if "@" in parts.netloc:
        # Never echoed back: it would be the credentials.
        raise WebhookURLError("must not hold a user name or password (user:pass@host); put a "
                              "token in the path if the receiver needs one, and check the "
                              "signature")
    host = parts.hostname
    if not host:
        raise WebhookURLError("has no host")
    if port == 0:
        raise WebhookURLError("has port 0")
    if allow_private:
        return
    literal = _literal(host)
    if literal is not None:
        check_address(literal)
    elif host == "localhost" or host.endswith(".localhost"):
        raise AddressRefusedError(f"{host} is not public (loopback); {_ALLOW_HINT}",
                                  address="127.0.0.1")


async def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (``getaddrinfo`` in a thread), in its order."""
    infos = await asyncio.to_thread(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    seen: dict[str, None] = {}
    for _family, _type, _proto, _name, sockaddr in infos:
        seen.setdefault(str(sockaddr[0]), None)
    return list(seen)


async def checked_addresses(
    host: str, port: int, *, allow_private: bool, resolve: Resolver | None = None
) -> list[str]:
    """The addresses to connect to for ``host``: all it resolves to, each checked.
    ``AddressRefusedError`` if any is not public (a name that also points inside is not
    trusted with the rest); ``OSError`` (``socket.gaierror``) when it does not resolve."""
    addresses = list(await (resolve or resolve_host)(host, port))
    if not addresses:
        raise socket.gaierror(socket.EAI_NONAME, f"{host} has no address")
    if not allow_private:
        for address in addresses:
            check_address(address, host=host)
    return addresses


def shown_url(url: str) -> str:
    """The URL fit for a log line: scheme, host, port and path, no credentials or query (a
    receiver's token often travels there)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(unparseable URL)"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}{parts.path}"


def host_and_port(url: str) -> tuple[str, int]:
    """The URL's host and port (the scheme's default when none is given)."""
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or _SCHEMES.get(parts.scheme.lower(), 80)
