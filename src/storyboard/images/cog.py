"""A self-hosted Cog model server (e.g. Flux-Schnell on your own GPU) as an image provider.

Cog answers ``PUT /predictions/{id}`` synchronously with the finished prediction; file outputs
come back as base64 ``data:`` URIs (or URLs when the server has an upload URL). The id is made
here, so a cancelled attempt can ``POST /predictions/{id}/cancel`` and free the server's slot.
Cog keeps no finished predictions and cannot be polled, so a retry simply runs again: it is free.

A Cog server runs as many predictions at once as it has slots (one, unless its ``cog.yaml`` says
more) and answers 409 to the rest, while a job sends all its scenes together. A 409 means the
prediction never started, so the client offers it again, with a growing pause, until a slot
frees or ``image_timeout`` has passed; only then is "busy" a failed attempt.

Errors: 503 (setup not finished) and 409 (still busy after waiting) are retryable; 503 after a
failed setup is an ``AccountError`` (every scene would fail); 422 (input rejected) is permanent.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from ..config import Settings
from ..errors import AccountError, ConfigurationError, PermanentImageError, RetryableImageError
from ..transport import HttpClient
from .base import ImageRequest, ImageResult, PredictionCallback
from .download import download_image, first_output_url, flagged_as_nsfw

__all__ = ["CogClient"]

log = logging.getLogger(__name__)

_CANCEL_TIMEOUT = httpx.Timeout(5.0)
_DOWNLOAD_TIMEOUT = 60.0
_BUSY_FIRST_PAUSE = 0.05  # seconds before offering a prediction again after a 409; doubles
_BUSY_MAX_PAUSE = 1.0


class CogClient(HttpClient):
    """Makes images with a Cog server at ``settings.cog_url``."""

    name = "cog"
    price_per_image = 0.0  # your own hardware: Storyboard has no price to count

    def __init__(
        self,
        *,
        settings: Settings,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """``sleep`` paces the wait for a free slot; tests pass one that records the pauses."""
        if not settings.cog_url:
            raise ConfigurationError(
                "The Cog provider needs STORYBOARD_COG_URL, e.g. http://gpu-box:5000"
            )
        if http_client is not None and transport is not None:
            raise ConfigurationError("pass either http_client or transport, not both")
        url = httpx.URL(settings.cog_url) if "://" in settings.cog_url else None
        if url is None or url.scheme not in ("http", "https") or not url.host:
            raise ConfigurationError(
                f"STORYBOARD_COG_URL must be an http(s) URL with a host, e.g. "
                f"http://gpu-box:5000 (got {settings.cog_url[:60]!r})")
        self._base = settings.cog_url.rstrip("/")
        # The answer comes when the image is done: the read timeout is the attempt's own limit.
        self._timeout = httpx.Timeout(10.0, read=settings.image_timeout + 5.0, pool=None)
        self._slot_wait = settings.image_timeout  # the longest a prediction waits for a slot
        self._sleep = sleep
        super().__init__(http_client, lambda: httpx.AsyncClient(transport=transport,
                                                                timeout=self._timeout))

    def __repr__(self) -> str:
        return f"CogClient(base_url={self._base!r})"

    async def generate(
        self, request: ImageRequest, *, on_prediction: PredictionCallback | None = None
    ) -> ImageResult:
        """Make one image. ``request.resume_prediction_id`` is ignored: Cog cannot be polled."""
        pid = secrets.token_hex(13)  # 26 characters, like Replicate's ids
        inputs = request.model_input()
        if on_prediction is not None:
            await on_prediction(pid)
        try:
            response = await self._put(pid, {"id": pid, "input": inputs})
        except asyncio.CancelledError:
            await self._cancel_quietly(pid)  # the server would otherwise finish it for no one
            raise
        except httpx.HTTPError as exc:
            raise RetryableImageError(
                f"Cog server at {self._base}: {type(exc).__name__} ({exc})"
            ) from exc
        output = await self._output_url(pid, response)
        data, extension = await download_image(self._http, output, timeout=_DOWNLOAD_TIMEOUT)
        log.info("cog: prediction %s produced a %s (%d bytes)", pid, extension, len(data))
        return ImageResult(
            data=data,
            extension=extension,
            source_url=None if output.startswith("data:") else output,
            prediction_id=pid,
            cost=0.0,
        )

    async def _put(self, pid: str, body: dict[str, Any]) -> httpx.Response:
        """Start the prediction and wait for its answer, waiting first for a slot if need be."""
        url = f"{self._base}/predictions/{pid}"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._slot_wait
        pause = _BUSY_FIRST_PAUSE
        while True:
            response = await self._http.put(url, json=body, timeout=self._timeout)
            if response.status_code == 409 and await self._broken():
                # Busy for good: its worker died and took the slots with it. Waiting out the
                # attempt's time (on every scene, three times) would only delay the same end.
                raise AccountError(
                    f"Cog server at {self._base} is out of service (its worker crashed or "
                    "never started, says its health-check); read its logs and restart it")
            if response.status_code != 409 or loop.time() + pause > deadline:
                return response
            log.debug("cog: every slot busy; prediction %s waits %.2fs", pid, pause)
            # Jitter, so scenes that waited together do not all come back at once.
            await self._sleep(pause * random.uniform(1.0, 1.5))
            pause = min(pause * 2, _BUSY_MAX_PAUSE)

    async def _output_url(self, pid: str, response: httpx.Response) -> str:
        """The output to download, or the error the answer calls for."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {"error": response.text[:300]}
        error = str(body.get("error") or body.get("detail") or "no error message")
        code = response.status_code
        where = f"Cog server at {self._base}"
        if code == 503:
            if await self._broken():
                raise AccountError(
                    f"{where} failed its setup or is out of service (its worker crashed or "
                    "never started, says its health-check); "
                    "read its logs and restart it"
                )
            raise RetryableImageError(f"{where} is still starting (HTTP 503): {error}")
        if code == 409:
            raise RetryableImageError(
                f"{where} stayed busy with other predictions for {self._slot_wait:g}s (HTTP 409)"
            )
        if code == 422:
            raise PermanentImageError(f"{where} rejected the input (HTTP 422): {_problems(body)}")
        if code >= 500:
            raise RetryableImageError(f"{where}: HTTP {code}: {error}")
        if code != 200:
            raise PermanentImageError(f"{where}: unexpected HTTP {code}: {error}")
        status = body.get("status")
        output = first_output_url(body.get("output"))
        if status == "succeeded" and output:
            return output
        if status == "failed" and "nsfw" in error.lower():
            raise flagged_as_nsfw("The model's", pid)
        if status == "succeeded":
            raise RetryableImageError(f"Cog prediction {pid} succeeded with no output")
        raise RetryableImageError(f"Cog prediction {pid} ended {status}: {error}")

    async def _broken(self) -> bool:
        """Whether the server says it cannot serve predictions until restarted. UNHEALTHY
        alone is not enough: a model's own health check may fail only while it is busy; the
        server names a dead worker by the closed channel to it."""
        try:
            response = await self._http.get(f"{self._base}/health-check", timeout=_CANCEL_TIMEOUT)
            health = response.json()
            status = health.get("status")
            detail = str(health.get("user_healthcheck_error") or "").lower()
        except (httpx.HTTPError, ValueError, AttributeError):
            return False
        return status in ("SETUP_FAILED", "DEFUNCT") or (
            status == "UNHEALTHY" and "channel closed" in detail)

    async def _cancel_quietly(self, pid: str) -> None:
        """Ask Cog to stop ``pid``; shielded, so the attempt's cancellation can't stop it."""

        async def cancel() -> None:
            url = f"{self._base}/predictions/{pid}/cancel"
            try:
                response = await self._http.post(url, timeout=_CANCEL_TIMEOUT)
                log.info("cog: cancelled prediction %s (HTTP %d)", pid, response.status_code)
            except httpx.HTTPError as exc:
                log.warning("cog: could not cancel prediction %s: %s", pid, type(exc).__name__)

        await self._shielded(cancel())


def _problems(body: dict[str, Any]) -> str:
    """Cog's 422 body (pydantic style: ``detail: [{loc, msg}]``) as one line."""
    detail = body.get("detail")
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                parts.append(f"{loc}: {item.get('msg')}")
        return "; ".join(parts) or str(detail)
    return str(detail or body.get("error") or "no detail")
