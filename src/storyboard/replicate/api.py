"""Replicate's prediction API: the one client every model the project runs there goes through.

The image provider (``images/replicate.py``) and the language-model planner
(``planning/replicate.py``) both build on ``ReplicateAPI``: the key and where it may be sent,
creating a prediction with ``Prefer: wait``, polling ``urls.get`` with backoff, cancelling a
prediction nobody waits for any more, and translating every error answer once, here:
``RetryableImageError`` (network, 5xx, 429 with its hint), ``PermanentImageError`` (422 and
other refusals), ``AccountError`` (401/403 key, 402 billing, 404 model). The tree is named for
images, Replicate's main use here; the planner translates it at its own edge. The API key never
appears in a message, log or repr.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import re
import ssl
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

from ..config import Settings, get_settings
from ..errors import AccountError, ConfigurationError, PermanentImageError, RetryableImageError
from ..transport import HttpClient, PooledTransport, parse_retry_after

__all__ = ["FINAL", "RUNNING", "ModelRef", "ReplicateAPI", "valid_prediction_id"]

log = logging.getLogger("storyboard.replicate")

RUNNING = frozenset({"starting", "processing"})
FINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})

_POLL_RETRIES = 3  # transient GET failures tolerated in a row while polling (GETs are safe)
_MAX_POLL_BACKOFF = 5.0
_REQUEST_TIMEOUT = httpx.Timeout(10.0, read=30.0, pool=None)
_CANCEL_TIMEOUT = httpx.Timeout(5.0)
_ID = re.compile(r"[a-z0-9]{1,64}")
_TOKEN = re.compile(r"[\x21-\x7e]+")  # printable ASCII: safe in a header
_MODEL = re.compile(r"([\w.-]+)/([\w.-]+)(?::([\w.-]+))?")


def valid_prediction_id(pid: object) -> bool:
    """Whether ``pid`` looks like a Replicate prediction id (it goes into URL paths)."""
    return isinstance(pid, str) and _ID.fullmatch(pid) is not None


@dataclass(frozen=True)
class ModelRef:
    """A model as a setting names it: ``owner/name`` or ``owner/name:version``."""

    owner: str
    name: str
    version: str | None
    setting: str  # the setting that names it, for messages that say what to fix
    default: str  # that setting's default

    @classmethod
    def parse(cls, value: str, *, setting: str, default: str) -> ModelRef:
        match = _MODEL.fullmatch(value.strip())
        if match is None:
            raise ConfigurationError(
                f"{setting}={value.strip()!r} should look like 'owner/name' or "
                f"'owner/name:version', e.g. {default}"
            )
        owner, name, version = match.groups()
        return cls(owner, name, version, setting, default)

    @property
    def slug(self) -> str:
        """``owner/name``: how predictions name their model."""
        return f"{self.owner}/{self.name}"

    def __str__(self) -> str:
        return self.slug + (f":{self.version}" if self.version else "")


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle takes ~50 ms; every client shares one context.
    return httpx.create_ssl_context()


class ReplicateAPI(HttpClient):
    """A client of Replicate's prediction API, for any model (``run`` waits for a whole
    answer; the image provider adds resuming, lost-prediction lookup and downloads)."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        settings: Settings | None = None,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """``sleep`` paces polling and its backoff; tests pass one that records the waits."""
        settings = settings if settings is not None else get_settings()
        if api_key is None and settings.replicate_api_key is not None:
            api_key = settings.replicate_api_key.get_secret_value()
        if not api_key or not api_key.strip():
            raise ConfigurationError(
                "No Replicate API key: set REPLICATE_API_KEY (or REPLICATE_API_TOKEN) to a token "
                "from https://replicate.com/account/api-tokens, or use the offline sketch renderer"
            )
        if not _TOKEN.fullmatch(api_key.strip()):
            # Such a key would fail inside httpx, whose error messages would quote it.
            raise ConfigurationError("REPLICATE_API_KEY has spaces or non-ASCII characters")
        if http_client is not None and transport is not None:
            raise ConfigurationError("pass either http_client or transport, not both")
        self._key = SecretStr(api_key.strip())
        self._settings = settings
        self._base = settings.replicate_base_url.rstrip("/")
        # Every in-flight image holds one connection during `Prefer: wait`, and its download
        # may need another.
        super().__init__(http_client, lambda: httpx.AsyncClient(
            transport=transport or PooledTransport(
                verify=_ssl_context(), max_connections=settings.max_inflight_images * 2 + 16),
            timeout=_REQUEST_TIMEOUT,
        ))
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._base!r})"

    def create_url(self, model: ModelRef) -> httpx.URL:
        """Where predictions of ``model`` are created (parsed once by the caller: httpx checks
        a URL string character by character on every request)."""
        if model.version:
            return httpx.URL(f"{self._base}/predictions")
        return httpx.URL(f"{self._base}/models/{model.owner}/{model.name}/predictions")

    # --- a whole answer, for language models ---------------------------------------------------

    async def run(self, model: ModelRef, inputs: dict[str, Any], *, cancel_after: float,
                  on_created: Callable[[str], Awaitable[None]] | None = None,
                  ) -> dict[str, Any]:
        """Create a prediction of ``model`` and wait for its final status; returns it (whatever
        that status). A language model streams its output into ``output`` while it works, so
        only a final status means the answer is whole. ``on_created`` hears the prediction's id
        before anything waits on it. Cancelling the caller cancels the prediction;
        ``cancel_after`` seconds bounds it on Replicate's side too, and the create's own wait
        ends before then, so the id is known in time to cancel."""
        body: dict[str, Any] = {"input": inputs}
        if model.version:
            body["version"] = model.version
        wait = max(1, min(self._settings.replicate_wait, math.floor(cancel_after) - 1))
        headers = {**self._auth(), "Prefer": f"wait={wait}",
                   "Cancel-After": f"{max(5, math.ceil(cancel_after))}s"}
        timeout = httpx.Timeout(10.0, read=wait + 5.0, pool=None)
        response = await self._send("POST", self.create_url(model), "create", body, headers,
                                    timeout)
        prediction = self._parse(response, "create", missing_model=model)
        pid = prediction["id"]
        try:
            if on_created is not None:
                await on_created(pid)
            return await self._wait_for(prediction, lambda p: p["status"] in FINAL)
        except asyncio.CancelledError:
            await self._cancel_quietly(pid)
            raise

    # --- the prediction's life -----------------------------------------------------------------

    async def _wait_for(self, prediction: dict[str, Any],
                        finished: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Poll until ``finished(prediction)``; stop (cancelling it) on a status we cannot
        interpret, which might never change."""
        pid = prediction["id"]
        failures = 0
        while True:
            status = prediction["status"]
            if finished(prediction):
                return prediction
            if status not in RUNNING:
                await self._cancel_quietly(pid)
                raise RetryableImageError(f"prediction {pid} has unknown status {status!r}")
            await self._sleep(self._settings.replicate_poll_interval)
            try:
                url = self._poll_url(prediction)
                response = await self._send("GET", url, "poll", None, self._auth())
                prediction = self._parse(response, "poll")
                failures = 0
            except RetryableImageError as exc:
                failures += 1
                if failures > _POLL_RETRIES:
                    raise
                backoff = self._settings.replicate_poll_interval * 2**failures
                delay = min(backoff, _MAX_POLL_BACKOFF)
                if exc.retry_after is not None:  # never sooner than Replicate asked
                    delay = max(delay, exc.retry_after)
                log.warning("replicate: polling %s failed (%s); again in %.1fs", pid, exc, delay)
                await self._sleep(delay)

    async def _cancel_quietly(self, pid: str) -> None:
        """Ask Replicate to stop ``pid``; shielded, so the attempt's cancellation can't stop it."""

        async def cancel() -> None:
            url, headers = f"{self._base}/predictions/{pid}/cancel", self._auth()
            try:
                response = await self._http.post(url, headers=headers, timeout=_CANCEL_TIMEOUT)
                log.info("replicate: cancelled prediction %s (HTTP %d)", pid, response.status_code)
            except httpx.HTTPError as exc:
                log.warning("replicate: cancelling %s failed: %s", pid, type(exc).__name__)

        await self._shielded(cancel())

    # --- HTTP and error translation ------------------------------------------------------------

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._key.get_secret_value()}"}

    def _same_origin(self, url: str) -> bool:
        parts, base = urllib.parse.urlsplit(url), urllib.parse.urlsplit(self._base)
        return (parts.scheme, parts.netloc) == (base.scheme, base.netloc)

    def _headers_for(self, url: str) -> dict[str, str]:
        """Replicate's file hosts (and the API's own origin) may see the key; no one else may."""
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        delivery = parts.scheme == "https" and (
            host == "replicate.delivery" or host.endswith(".replicate.delivery")
        )
        return self._auth() if self._same_origin(url) or delivery else {}

    def _get_url(self, pid: str) -> str:
        return f"{self._base}/predictions/{pid}"

    def _poll_url(self, prediction: dict[str, Any]) -> str:
        """The prediction's ``urls.get``, if it is on the configured API origin; else the URL
        made from the base. The key goes to no other host, whatever an answer says."""
        pid, urls = prediction["id"], prediction.get("urls")
        url = urls.get("get") if isinstance(urls, dict) else None
        if isinstance(url, str):
            parts = urllib.parse.urlsplit(url)
            plain = not parts.query and not parts.fragment
            if self._same_origin(url) and plain and parts.path.endswith(f"/predictions/{pid}"):
                return url
        return self._get_url(pid)

    def _redact(self, text: str) -> str:
        return text.replace(self._key.get_secret_value(), "[redacted]")

    async def _send(
        self,
        method: str,
        url: str | httpx.URL,
        what: str,
        body: dict[str, Any] | None,
        headers: dict[str, str],
        timeout: httpx.Timeout = _REQUEST_TIMEOUT,
    ) -> httpx.Response:
        try:
            return await self._http.request(
                method, url, json=body, headers=headers, timeout=timeout
            )
        except httpx.HTTPError as exc:
            if what == "create" and not unsent(exc):
                # Replicate may have made (and will bill) it: the image provider notes it, so
                # that a retry with the scene's own inputs looks for it before creating anew.
                log.warning("replicate: create failed after sending (%s)", type(exc).__name__)
            detail = self._redact(str(exc)) or "no detail"
            raise RetryableImageError(f"Replicate {what}: {type(exc).__name__} ({detail})") from exc

    def _parse(
        self, response: httpx.Response, what: str, *, missing_model: ModelRef | None = None
    ) -> dict[str, Any]:
        """The prediction in a 2xx answer, or the translated error. ``missing_model``: a 404
        means that model does not exist (a create), not that a prediction vanished."""
        if not response.is_success:
            raise self._error(response, what, missing_model=missing_model)
        malformed = RetryableImageError(f"Replicate {what}: malformed prediction in the answer")
        try:
            prediction = dict(response.json())
            pid = prediction["id"]
        except (ValueError, KeyError, TypeError) as exc:
            raise malformed from exc
        if not valid_prediction_id(pid):  # the id goes into URL paths
            raise malformed
        prediction.setdefault("output", None)
        prediction.setdefault("status", "starting")
        return prediction

    def _error(
        self, response: httpx.Response, what: str, *, missing_model: ModelRef | None
    ) -> PermanentImageError | RetryableImageError:
        """Translate an error answer (an RFC 7807 problem body, usually)."""
        code = response.status_code
        try:
            problem = response.json()
        except ValueError:
            problem = None
        if not isinstance(problem, dict):
            problem = {"detail": response.text[:300]}
        title = self._redact(str(problem.get("title") or response.reason_phrase))
        detail = self._redact(str(problem.get("detail") or ""))
        message = f"Replicate {what}: HTTP {code} {title}" + (f": {detail}" if detail else "")
        if code == 429 or code >= 500:
            retry_after = parse_retry_after(response.headers, detail)
            return RetryableImageError(message, retry_after=retry_after)
        if code in (401, 403):
            return AccountError(
                f"Replicate rejected the API key (HTTP {code} {title}). Check REPLICATE_API_KEY; "
                "tokens are at https://replicate.com/account/api-tokens"
            )
        if code == 402:
            return AccountError(
                f"Replicate refused to bill the account (HTTP 402 {title}). Add credit at "
                "https://replicate.com/account/billing, wait a few minutes, then generate again"
            )
        if code == 404 and missing_model is not None:
            return AccountError(
                f"Replicate has no model {str(missing_model)!r} at {self._base} (HTTP 404). "
                f"Check {missing_model.setting} (default {missing_model.default}) and "
                "REPLICATE_BASE_URL"
            )
        if code == 404:  # our prediction vanished: the next attempt resumes (404) or creates
            return RetryableImageError(message)
        if code == 422:
            fields = [f for f in problem.get("invalid_fields") or [] if isinstance(f, dict)]
            listed = "; ".join(f"{f.get('field')}: {f.get('description')}" for f in fields)
            return PermanentImageError(
                f"Replicate rejected the input (HTTP 422 {title}): {self._redact(listed) or detail}"
            )
        return PermanentImageError(message)


def unsent(exc: httpx.HTTPError) -> bool:
    """The request never left: Replicate cannot have acted on it."""
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
