"""The HTTP surface's defences, against the real app served by uvicorn on loopback: security
headers on every response (pages, files, the API, errors, the event stream), the body cap (413
by Content-Length and for a chunked body as it streams), CORS off unless origins are set."""

from __future__ import annotations

import base64
import hashlib
import re
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from pydantic import ValidationError

from storyboard.api.app import create_app
from storyboard.api.security import install_security
from storyboard.config import Settings, get_settings

from .live_server import serve

STRICT_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; font-src 'self'; manifest-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)
FIXED_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}
LISTED = "https://studio.example.com"


@pytest.fixture(autouse=True)
def _no_http_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The settings under test start from their defaults, whatever the shell exports."""
    monkeypatch.delenv("STORYBOARD_CORS_ORIGINS", raising=False)
    monkeypatch.delenv("STORYBOARD_MAX_BODY_BYTES", raising=False)


@contextmanager
def client(settings: Settings) -> Iterator[httpx.Client]:
    with serve(create_app(settings)) as base, httpx.Client(base_url=base, timeout=30) as c:
        yield c


def assert_secured(response: httpx.Response, csp: str = STRICT_CSP) -> None:
    for name, value in FIXED_HEADERS.items():
        assert response.headers.get(name) == value, (response.url, name, response.headers)
    assert response.headers.get("content-security-policy") == csp, response.url
    assert not any(name.startswith("access-control-") for name in response.headers), (
        response.url, response.headers)


def inline_script_hashes(html: str) -> list[str]:
    scripts = re.findall(r"<script\b(?![^>]*\bsrc=)[^>]*>(.*?)</script>", html, re.DOTALL)
    return [f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
            for s in scripts]


def raw_request(base: str, head: str, body_parts: Sequence[bytes] = ()) -> tuple[int, str, bytes]:
    """Send ``head`` (request line and headers) then ``body_parts`` on a plain socket; the
    status, headers and body of the answer (the server closes the connection after it)."""
    url = urlsplit(base)
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode())
        for part in body_parts:
            sock.sendall(part)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    header_block, _, body = answer.partition(b"\r\n\r\n")
    status = int(header_block.split(b" ", 2)[1])
    return status, header_block.decode("latin-1").lower(), body


def chunked(parts: list[bytes]) -> list[bytes]:
    return [b"%x\r\n%s\r\n" % (len(part), part) for part in parts] + [b"0\r\n\r\n"]


# ---------------------------------------------------------------- headers


def test_every_response_carries_the_security_headers(settings: Settings) -> None:
    with client(settings) as c:
        for path in ("/", "/static/studio.js", "/static/studio.css", "/api/v2/jobs",
                     "/openapi.json", "/api/v2/jobs/424242", "/no/such/page",
                     "/media/jobs/1/none.png", "/static-offline-docs/swagger-ui.css"):
            response = c.get(path)
            assert response.status_code in (200, 404), (path, response.status_code)
            assert_secured(response)
        assert c.get("/no/such/page").status_code == 404
        # A refused request and an error of the service's own are answered the same way.
        assert_secured(c.post("/api/v2/generate", json={"prompt": ""}))
        assert_secured(c.head("/"))


def test_the_docs_page_allows_exactly_its_own_inline_scripts(settings: Settings) -> None:
    with client(settings) as c:
        for path in ("/docs", "/docs/oauth2-redirect"):
            response = c.get(path)
            assert response.status_code == 200
            hashes = inline_script_hashes(response.text)
            assert hashes, f"{path} has no inline script any more"
            policy = STRICT_CSP.replace("script-src 'self'",
                                        "script-src 'self' " + " ".join(hashes))
            assert_secured(response, policy)
            assert "unsafe-inline" not in response.headers["content-security-policy"]
        # The docs' files and the OpenAPI document get the strict policy.
        assert_secured(c.get("/static-offline-docs/swagger-ui-bundle.js"))
        assert_secured(c.get("/openapi.json"))


def test_the_event_stream_carries_the_headers_and_still_streams(settings: Settings) -> None:
    with client(settings) as c:
        job_id = c.post("/api/v2/generate", json={"prompt": "A robot exploring Mars",
                                                  "duration": 15}).json()["job_id"]
        with c.stream("GET", f"/api/v2/jobs/{job_id}/events") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert_secured(response)
            events = [line for line in response.iter_lines() if line.startswith("event:")]
    assert events[-1] == "event: done"


def test_headers_a_route_sets_itself_are_kept_and_a_crash_is_covered_too(
    settings: Settings,
) -> None:
    app = FastAPI()

    @app.get("/own")
    def own() -> PlainTextResponse:
        return PlainTextResponse("ok", headers={"Content-Security-Policy": "sandbox",
                                                "Referrer-Policy": "same-origin"})

    @app.get("/crash")
    def crash() -> None:
        raise RuntimeError("boom")

    install_security(app, settings)
    with serve(app) as base, httpx.Client(base_url=base) as c:
        response = c.get("/own")
        assert response.headers["content-security-policy"] == "sandbox"
        assert response.headers["referrer-policy"] == "same-origin"
        assert response.headers["x-content-type-options"] == "nosniff"
        crashed = c.get("/crash")  # Starlette's own 500 page, outside every other middleware
        assert crashed.status_code == 500
        assert_secured(crashed)


# ---------------------------------------------------------------- body cap


def test_a_body_over_the_limit_by_its_length_is_refused_unread(settings: Settings) -> None:
    assert settings.max_body_bytes == 1_048_576  # the default: 1 MiB
    with serve(create_app(settings)) as base:
        status, headers, body = raw_request(
            base, "POST /api/v2/generate HTTP/1.1\nHost: test\n"
                  "Content-Type: application/json\nContent-Length: 1048577\n\n")
        assert status == 413
        assert "application/json" in headers and "x-content-type-options: nosniff" in headers
        assert httpx.Response(413, content=body).json() == {
            "detail": "Request body too large: at most 1048576 bytes are accepted"}
        # At the limit it is read: this one is refused for what it says, not for its size.
        response = httpx.post(f"{base}/api/v2/generate",
                              content=b'{"prompt": "' + b" " * (1_048_576 - 14) + b'"}',
                              headers={"content-type": "application/json"})
        assert response.status_code == 422
        assert httpx.get(f"{base}/api/v2/jobs").json()["total"] == 0


def test_a_chunked_body_is_cut_off_at_the_limit(settings: Settings) -> None:
    small = get_settings(max_body_bytes=1024)
    with serve(create_app(small)) as base:
        status, headers, body = raw_request(
            base, "POST /api/v2/generate HTTP/1.1\nHost: test\nContent-Type: application/json\n"
                  "Transfer-Encoding: chunked\n\n",
            chunked([b'{"prompt": "' + b"x" * 500, b"x" * 500, b"x" * 500 + b'"}']))
        assert status == 413, body
        assert httpx.Response(413, content=body).json() == {
            "detail": "Request body too large: at most 1024 bytes are accepted"}
        assert "content-security-policy: default-src 'none'" in headers
        assert httpx.get(f"{base}/api/v2/jobs").json()["total"] == 0


def test_the_app_never_sees_more_than_the_limit(settings: Settings) -> None:
    """A route reading the raw stream: the chunk that passes the limit never reaches it."""
    seen: list[int] = []
    app = FastAPI()

    @app.post("/count")
    async def count(request: Request) -> dict[str, int]:
        async for chunk in request.stream():
            seen.append(len(chunk))
        return {"bytes": sum(seen)}

    install_security(app, get_settings(max_body_bytes=1024))
    with serve(app) as base:
        head = "POST /count HTTP/1.1\nHost: test\nConnection: close\nTransfer-Encoding: chunked\n\n"
        status, _, body = raw_request(base, head, chunked([b"a" * 400] * 3))
        assert status == 413, body
        assert sum(seen) <= 1024, seen
        seen.clear()
        status, _, body = raw_request(base, head, chunked([b"a" * 512] * 2))  # exactly 1024
        assert status == 200 and httpx.Response(200, content=body).json() == {"bytes": 1024}
        seen.clear()
        status, _, _ = raw_request(base, "POST /count HTTP/1.1\nHost: test\n"
                                         "Content-Length: 1025\n\n")
        assert status == 413 and seen == []  # refused before the route ran at all


def test_the_body_limit_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORYBOARD_MAX_BODY_BYTES", "4096")
    assert get_settings().max_body_bytes == 4096
    monkeypatch.setenv("STORYBOARD_MAX_BODY_BYTES", "100")
    with pytest.raises(ValidationError, match="max_body_bytes"):
        get_settings()


# ---------------------------------------------------------------- CORS


def preflight(c: httpx.Client, origin: str, method: str = "POST") -> httpx.Response:
    return c.options("/api/v2/generate", headers={
        "Origin": origin, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type"})


def test_cors_is_off_by_default(settings: Settings) -> None:
    assert settings.cors_origins == ()
    with client(settings) as c:
        answer = preflight(c, LISTED)
        assert answer.status_code == 405
        assert_secured(answer)  # no Access-Control-* header at all
        assert_secured(c.get("/api/v2/jobs", headers={"Origin": LISTED}))


def test_cors_answers_only_the_listed_origins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORYBOARD_CORS_ORIGINS", f" {LISTED} ,http://localhost:5173")
    settings = get_settings()
    assert settings.cors_origins == (LISTED, "http://localhost:5173")
    with client(settings) as c:
        answer = preflight(c, LISTED, "PATCH")
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == LISTED
        assert set(answer.headers["access-control-allow-methods"].split(", ")) == {
            "GET", "POST", "PATCH", "DELETE", "OPTIONS"}
        assert set(answer.headers["access-control-allow-headers"].lower().split(", ")) >= {
            "authorization", "content-type"}
        assert "access-control-allow-credentials" not in answer.headers
        assert answer.headers["x-frame-options"] == "DENY"  # CORS answers are secured too
        listed = c.get("/api/v2/jobs", headers={"Origin": LISTED})
        assert listed.headers["access-control-allow-origin"] == LISTED
        assert "access-control-allow-credentials" not in listed.headers
        assert preflight(c, "http://localhost:5173").status_code == 200

        refused = preflight(c, "https://evil.example")
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers
        for origin in ("https://evil.example", "https://studio.example.com.evil.example",
                       "http://studio.example.com", "null"):
            answer = c.get("/api/v2/jobs", headers={"Origin": origin})
            assert "access-control-allow-origin" not in answer.headers, origin
        # A request header the API does not take is not allowed.
        assert c.options("/api/v2/generate", headers={
            "Origin": LISTED, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-custom"}).status_code == 400


@pytest.mark.parametrize(("value", "problem"), [
    ("*", "wildcards are not allowed"),
    ("https://*.example.com", "wildcards are not allowed"),
    ("studio.example.com", "needs http:// or https://"),
    ("ftp://studio.example.com", "needs http:// or https://"),
    ("https://studio.example.com/", "no path"),
    ("https://studio.example.com/app", "no path"),
    ("https://studio.example.com:99999", "port"),
    (f"{LISTED},https://ok.example/x", "'https://ok.example/x' is not an origin"),
])
def test_a_bad_cors_origin_is_refused_at_settings_load(
    monkeypatch: pytest.MonkeyPatch, value: str, problem: str,
) -> None:
    monkeypatch.setenv("STORYBOARD_CORS_ORIGINS", value)
    with pytest.raises(ValidationError, match="STORYBOARD_CORS_ORIGINS") as error:
        get_settings()
    assert problem in str(error.value)


def test_cors_origins_are_written_as_browsers_send_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORYBOARD_CORS_ORIGINS",
                       "HTTPS://Studio.Example.com:443,http://[::1]:8000,,")
    assert get_settings().cors_origins == (LISTED, "http://[::1]:8000")
    monkeypatch.setenv("STORYBOARD_CORS_ORIGINS", "")
    assert get_settings().cors_origins == ()
