"""The HTTP surface's defences: security headers on every response, a cap on request bodies,
and CORS only for the origins the operator names.

Why: the studio is a page that runs in a browser and holds a job's links (share links carry
their secret in the URL fragment), so every response says what a browser may do with it. A
strict Content-Security-Policy lets pages run only the app's own files (no inline script, no
eval, nothing from another host), so injected markup cannot run; ``frame-ancestors 'none'`` and
``X-Frame-Options`` keep the pages out of other sites' frames (clickjacking); ``nosniff`` stops
a stored file from being read as another type; ``no-referrer`` sends no page's address to
other sites (share links carry secrets in their URLs). The API docs page (Swagger UI from
fastapi-offline) starts itself with an inline script: that page alone allows exactly the
hashes of the inline scripts it was sent with, computed from the page itself. The contact
sheet beside a job's images (``/media/jobs/<id>/index.html``) keeps its inline stylesheet the
same way (styles only). A request body is refused with 413 past ``STORYBOARD_MAX_BODY_BYTES``
before the app reads it (by its Content-Length) or as it streams (chunked), so nobody can make
the app buffer gigabytes. Cross-origin calls are refused by browsers unless
``STORYBOARD_CORS_ORIGINS`` lists the calling page's origin; tokens travel in Authorization,
so no credentials (cookies) are ever allowed.

Everything here is plain ASGI middleware: the event stream (SSE) and file responses pass
through message by message, never buffered (only the docs page and contact sheets are, to be
hashed, and they are small).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable

import anyio
from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import Settings

__all__ = ["install_security"]

_POLICY = (
    ("default-src", "'none'"),
    ("script-src", "'self'"),
    ("style-src", "'self'"),
    ("img-src", "'self' data: blob:"),
    ("media-src", "'self' blob:"),
    ("connect-src", "'self'"),
    ("font-src", "'self'"),
    ("manifest-src", "'self'"),
    ("frame-ancestors", "'none'"),
    ("base-uri", "'none'"),
    ("form-action", "'self'"),
    ("object-src", "'none'"),
)

_HEADERS = (
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=()"),
)

# Inline elements of a page, as the HTML parser reads them: a script with a src runs no text.
_FLAGS = re.IGNORECASE | re.DOTALL
_INLINE = {
    "script-src": re.compile(rb"<script\b(?![^>]*\bsrc\s*=)[^>]*>(.*?)</script\s*>", _FLAGS),
    "style-src": re.compile(rb"<style\b[^>]*>(.*?)</style\s*>", _FLAGS),
}
# Pages larger than this are not held back to be hashed: they get the strict policy.
_MAX_HASHED_PAGE = 2 * 1024 * 1024

# A refused body is read on (and dropped) up to this much for this long before the answer.
_DRAIN_BYTES = 4 * 1024 * 1024
_DRAIN_SECONDS = 2.0

CORS_METHODS = ("GET", "POST", "PATCH", "DELETE", "OPTIONS")
CORS_HEADERS = ("Authorization", "Content-Type")


def content_security_policy(extra: dict[str, list[str]] | None = None) -> str:
    """The policy, with ``extra`` sources (hashes) added to their directives."""
    extra = extra or {}
    return "; ".join(" ".join([name, value, *extra.get(name, [])]) for name, value in _POLICY)


STRICT_POLICY = content_security_policy()


def _hashes(body: bytes, directives: Iterable[str]) -> dict[str, list[str]]:
    """``'sha256-...'`` of each inline script or style in ``body`` (UTF-8 HTML)."""
    found: dict[str, list[str]] = {}
    for directive in directives:
        for match in _INLINE[directive].finditer(body):
            # The HTML parser turns CRLF and lone CR into LF before the text is hashed.
            text = match.group(1).replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            digest = base64.b64encode(hashlib.sha256(text).digest()).decode()
            source = f"'sha256-{digest}'"
            if source not in found.setdefault(directive, []):
                found[directive].append(source)
    return found


def _add_headers(message: Message, policy: str) -> None:
    """The security headers on a response start, except those the route set itself."""
    headers = list(message.get("headers", []))
    present = {bytes(name).lower() for name, _ in headers}
    for name, value in (("content-security-policy", policy), *_HEADERS):
        if name.encode() not in present:
            headers.append((name.encode(), value.encode()))
    message["headers"] = headers


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root = scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root + "/") else path


def _is_html(message: Message) -> bool:
    return any(bytes(name).lower() == b"content-type" and bytes(value).lower().startswith(
        b"text/html") for name, value in message.get("headers", []))


class SecurityHeaders:
    """Adds the security headers to every response; on the pages in ``hashed_pages`` (path
    prefix -> directives), an HTML response is held until complete and its inline scripts or
    styles are allowed by their hashes."""

    def __init__(self, app: ASGIApp, hashed_pages: dict[str, tuple[str, ...]]) -> None:
        self.app = app
        self.hashed_pages = hashed_pages

    def _directives(self, scope: Scope) -> tuple[str, ...]:
        path = _route_path(scope)
        for prefix, directives in self.hashed_pages.items():
            if path == prefix or (prefix.endswith("/") and path.startswith(prefix)):
                return directives
        return ()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        directives = self._directives(scope)
        if directives:
            await self._hashing(scope, receive, send, directives)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                _add_headers(message, STRICT_POLICY)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _hashing(self, scope: Scope, receive: Receive, send: Send,
                       directives: tuple[str, ...]) -> None:
        start: Message | None = None
        held: list[bytes] = []
        passing = False  # the start is sent: the rest goes through as it comes

        async def flush(policy: str, more_body: bool) -> None:
            nonlocal passing
            assert start is not None
            _add_headers(start, policy)
            await send(start)
            passing = True
            if held or not more_body:
                await send({"type": "http.response.body", "body": b"".join(held),
                            "more_body": more_body})

        async def holding_send(message: Message) -> None:
            nonlocal start
            if passing:
                await send(message)
            elif message["type"] == "http.response.start":
                start = message
                if not _is_html(message):
                    await flush(STRICT_POLICY, more_body=True)
            elif message["type"] == "http.response.body" and start is not None:
                held.append(message.get("body", b""))
                more = bool(message.get("more_body", False))
                if not more:
                    await flush(content_security_policy(
                        _hashes(b"".join(held), directives)), more_body=False)
                elif sum(map(len, held)) > _MAX_HASHED_PAGE:
                    await flush(STRICT_POLICY, more_body=True)
            else:  # e.g. a file sent by path: not hashed, the strict policy
                if start is not None:
                    await flush(STRICT_POLICY, more_body=True)
                await send(message)

        await self.app(scope, receive, holding_send)


class BodyTooLarge(HTTPException):
    """A request body past the limit (an HTTPException, so FastAPI passes it on as it is)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request body too large: at most {limit} bytes are accepted")


class BodyLimit:
    """413 for a request body over ``limit`` bytes: at once by its Content-Length, or as a
    chunked body streams in (the app never receives the chunk that passes the limit)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def _drain(self, receive: Receive) -> None:
        """Read and drop what the client is still sending, up to a bound. Why: closing a
        socket with unread data makes the kernel answer with a reset, and a client that is
        still writing then loses our 413 too; nginx's lingering close does the same."""
        with anyio.move_on_after(_DRAIN_SECONDS):
            drained = 0
            while drained <= _DRAIN_BYTES:
                message = await receive()
                if message["type"] != "http.request":
                    return
                drained += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return

    async def _refuse(self, send: Send, receive: Receive) -> None:
        await self._drain(receive)
        body = json.dumps({"detail": BodyTooLarge(self.limit).detail}).encode()
        # The connection closes after the answer: the rest of a body past the drain's bound
        # is never read, so the connection cannot carry another request.
        await send({"type": "http.response.start", "status": 413, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = next((value for name, value in scope["headers"]
                       if bytes(name).lower() == b"content-length"), None)
        if length is not None and length.strip().isdigit() and int(length) > self.limit:
            await self._refuse(send, receive)
            return

        received = 0
        exceeded = started = refused = False

        async def capped_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise BodyTooLarge(self.limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    exceeded = True
                    raise BodyTooLarge(self.limit)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started, refused
            if exceeded and not started:
                # Whatever the app made of the cut-off body, the answer is the 413.
                started = refused = True
                await self._refuse(send, receive)
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, capped_receive, guarded_send)
        except Exception:
            if not exceeded or (started and not refused):
                raise
            if not started:
                await self._refuse(send, receive)


def install_security(app: FastAPI, settings: Settings) -> None:
    """Security headers on every response, the body cap and (when origins are set) CORS."""
    # Added innermost first: headers (outermost, so even CORS answers and the 413 carry them),
    # then CORS (so a 413 to a listed origin is readable by its page), then the body cap.
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=list(CORS_METHODS),
            allow_headers=list(CORS_HEADERS),
            allow_credentials=False,
        )
    docs = {path for path in ("/docs", app.docs_url, app.swagger_ui_oauth2_redirect_url) if path}
    hashed_pages: dict[str, tuple[str, ...]] = {
        **{path: ("script-src", "style-src") for path in sorted(docs)},
        "/media/": ("style-src",),  # the contact sheets' inline stylesheet
    }
    # Outside even Starlette's error middleware, so its 500 page carries the headers too.
    build = app.build_middleware_stack

    def build_with_headers() -> ASGIApp:
        return SecurityHeaders(build(), hashed_pages)

    app.build_middleware_stack = build_with_headers  # type: ignore[method-assign]
