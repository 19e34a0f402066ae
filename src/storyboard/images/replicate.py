"""Replicate as an image provider: one Flux-Schnell prediction per image, downloaded at once.

One ``generate()`` call is one attempt; the job owns retries and the per-attempt timeout. Inputs
are checked against Flux-Schnell's schema before any request. The prediction's id goes to
``on_prediction`` as soon as it exists, so a later attempt resumes it instead of paying twice;
one whose id never arrived (the worker died while a create was held by ``Prefer: wait``, or the
answer was lost) is found again by its model and exact inputs, a seed of the scene's own included,
among the account's recent predictions.
Waiting ends on output or a final status, whichever comes first (Flux-Schnell fills ``output``
while ``status`` still says ``processing``), and on any status we cannot interpret. A cancelled
attempt cancels its prediction. Outputs are downloaded and verified at once: Replicate deletes
them after an hour.

Errors are translated once, here: ``RetryableImageError`` (network, 5xx, 429 with its hint,
transient failures), ``DownloadError`` (succeeded and billed, but the image did not arrive),
``PermanentImageError`` (422, NSFW, bad options), ``AccountError`` (401/403 key, 402 billing,
404 model). The API key never appears in a message, log or repr.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import re
import ssl
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pydantic import SecretStr

from ..config import Settings, get_settings
from ..errors import (
    AccountError,
    ConfigurationError,
    ImageGenerationError,
    PermanentImageError,
    RetryableImageError,
)
from .base import ImageRequest, ImageResult, LostSearch, PredictionCallback
from .download import DownloadError, download_image, first_output_url, flagged_as_nsfw
from .transport import HttpImageClient, PooledTransport, parse_retry_after

__all__ = [
    "FLUX_SCHNELL",
    "FLUX_SCHNELL_INPUTS",
    "ReplicateClient",
    "build_input",
    "parse_retry_after",
]

log = logging.getLogger(__name__)

FLUX_SCHNELL = "black-forest-labs/flux-schnell"
RUNNING = frozenset({"starting", "processing"})
FINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})

_POLL_RETRIES = 3  # transient GET failures tolerated in a row while polling (GETs are safe)
_MAX_POLL_BACKOFF = 5.0
_REQUEST_TIMEOUT = httpx.Timeout(10.0, read=30.0, pool=None)
_CANCEL_TIMEOUT = httpx.Timeout(5.0)
_DOWNLOAD_TIMEOUT = 60.0
_ID = re.compile(r"[a-z0-9]{1,64}")
_TOKEN = re.compile(r"[\x21-\x7e]+")  # printable ASCII: safe in a header
_MODEL = re.compile(r"([\w.-]+)/([\w.-]+)(?::([\w.-]+))?")
_LOST_PAGES = 10  # pages of 100 searched for a lost prediction: more than a worker has in flight
_LOST_FRESH = 30.0  # seconds one search of the account's predictions serves later lookups
_LOST_TIMEOUT = 10.0  # seconds a search may take before the attempt gives up and creates anew
# Replicate keeps an API prediction's inputs and outputs for an hour: older ones are no use.
_RETENTION = timedelta(hours=1)
# Our clock and Replicate's may disagree; the random seed, not the time, tells predictions apart.
_CLOCK_SKEW = timedelta(minutes=5)


def _lost_key(inputs: object) -> str | None:
    """What tells one of our requests from any other: all of its inputs (the seed among them
    random), in a canonical form."""
    if not isinstance(inputs, dict) or "seed" not in inputs:
        return None
    try:
        return json.dumps(inputs, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _unsent(exc: httpx.HTTPError) -> bool:
    """The request never left: Replicate cannot have acted on it."""
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


def _created_at(prediction: dict[str, Any]) -> datetime | None:
    try:
        created = datetime.fromisoformat(str(prediction.get("created_at")))
    except ValueError:
        return None
    return created if created.tzinfo is not None else created.replace(tzinfo=UTC)

# --- Flux-Schnell's input schema (from the model's OpenAPI description) ----------------------

_ASPECT_RATIOS = ("1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21")
_CHOICES: Mapping[str, tuple[object, ...]] = {
    "aspect_ratio": _ASPECT_RATIOS,
    "output_format": ("webp", "jpg", "png"),
    "megapixels": ("1", "0.25"),
    # The schema allows 1-4; one call returns one ImageResult, so more would be paid for and lost.
    "num_outputs": (1,),
}
_INT_RANGES: Mapping[str, tuple[float, float]] = {
    "num_inference_steps": (1, 4),
    "output_quality": (0, 100),
    "seed": (-math.inf, math.inf),
}
_FLAGS = frozenset({"go_fast", "disable_safety_checker"})
FLUX_SCHNELL_INPUTS = frozenset({"prompt", *_CHOICES, *_INT_RANGES, *_FLAGS})
# The model's fast path: Flux-Schnell is distilled for 4 steps, and go_fast is its quick kernel.
FAST_DEFAULTS: Mapping[str, object] = {"go_fast": True, "num_inference_steps": 4}


def _input_problem(name: str, value: object) -> str | None:
    """What is wrong with one Flux-Schnell input, or None."""
    if name == "prompt":
        return None if isinstance(value, str) and value.strip() else "must be a non-empty string"
    if name in _FLAGS:
        return None if isinstance(value, bool) else "must be true or false"
    if name in _CHOICES:
        # type() too: True == 1 in Python, but not in the model's schema.
        if any(type(value) is type(c) and value == c for c in _CHOICES[name]):
            return None
        return f"must be one of {', '.join(map(repr, _CHOICES[name]))}"
    low, high = _INT_RANGES[name]
    if isinstance(value, bool) or not isinstance(value, int):
        return "must be an integer"
    return None if low <= value <= high else f"must be between {low} and {high}"


def build_input(model: str, request: ImageRequest, options: Mapping[str, object]) -> dict[str, Any]:
    """The prediction's ``input``; for Flux-Schnell, checked against its schema.

    Raises ``PermanentImageError`` naming the first unknown option or invalid value. Other
    models' schemas are unknown here, so their options pass unchecked.
    """
    inputs = request.model_input()
    if model.split(":", 1)[0] != FLUX_SCHNELL:
        return {**inputs, **options}
    inputs = {**FAST_DEFAULTS, **inputs, **options}
    for name, value in inputs.items():
        if name not in FLUX_SCHNELL_INPUTS:
            known = ", ".join(sorted(FLUX_SCHNELL_INPUTS))
            raise PermanentImageError(f"unknown option {name!r} for {FLUX_SCHNELL}; known: {known}")
        if problem := _input_problem(name, value):
            raise PermanentImageError(f"invalid option {name}={value!r}: {problem}")
    return inputs


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle takes ~50 ms; every client shares one context.
    return httpx.create_ssl_context()


class ReplicateClient(HttpImageClient):
    """Makes images with a Replicate model (Flux-Schnell by default)."""

    name = "replicate"
    # A prediction whose id was lost (a crash, an answer that never came) can be found again by
    # its inputs (prompt and seed).
    finds_lost_predictions = True

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
        self.price_per_image: float = settings.image_price
        self._base = settings.replicate_base_url.rstrip("/")
        self._model = settings.image_model.strip()
        match = _MODEL.fullmatch(self._model)
        if match is None:
            raise ConfigurationError(
                f"STORYBOARD_IMAGE_MODEL={self._model!r} should look like 'owner/name' or "
                f"'owner/name:version', e.g. {FLUX_SCHNELL}"
            )
        owner, model_name, self._version = match.groups()
        self._model_name = f"{owner}/{model_name}"
        # The last search for lost predictions: (when, since when, found by inputs, its wall
        # clock start), and the creates of this process whose answers never came, by inputs.
        self._lost: tuple[float, datetime, dict[str, list[dict[str, Any]]], datetime] | None = None
        self._lost_lock = asyncio.Lock()
        self._unanswered: dict[str, datetime] = {}
        create_url = f"{self._base}/models/{owner}/{model_name}/predictions"
        if self._version:
            create_url = f"{self._base}/predictions"
        # Parsed once: httpx checks a URL string character by character on every request.
        self._create_url = httpx.URL(create_url)
        # The wait must end before the job's per-attempt timeout, or the attempt is cancelled
        # before it learns the prediction id and cannot cancel the prediction.
        self._wait = max(1, min(settings.replicate_wait, math.floor(settings.image_timeout) - 1))
        # Every in-flight image holds one connection during `Prefer: wait`, and its download
        # may need another.
        super().__init__(http_client, lambda: httpx.AsyncClient(
            transport=transport or PooledTransport(
                verify=_ssl_context(), max_connections=settings.max_inflight_images * 2 + 16),
            timeout=_REQUEST_TIMEOUT,
        ))
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"ReplicateClient(base_url={self._base!r}, model={self._model!r})"

    async def generate_image(self, prompt: str, **options: object) -> ImageResult:
        """Make one image from ``prompt``; ``options`` are the model's inputs (aspect_ratio ...)."""
        fields: dict[str, Any] = {"aspect_ratio": "16:9", "seed": None,
                                  "output_format": self._settings.output_format}  # fmt: skip
        # The values are checked by build_input, against the model's own rules.
        fields.update((name, options.pop(name)) for name in list(fields) if name in options)
        return await self._generate(ImageRequest(prompt=prompt, **fields), options)

    async def generate(
        self, request: ImageRequest, *, on_prediction: PredictionCallback | None = None
    ) -> ImageResult:
        """Make one image: one attempt, resuming ``request.resume_prediction_id`` when it helps."""
        return await self._generate(request, {}, on_prediction)

    async def _generate(
        self,
        request: ImageRequest,
        options: Mapping[str, object],
        on_prediction: PredictionCallback | None = None,
    ) -> ImageResult:
        inputs = build_input(self._model, request, options)  # before any request: typos are free
        prediction = None
        if request.resume_prediction_id:
            prediction = await self._resume(request.resume_prediction_id)
        if prediction is None and request.unique_inputs and (
                request.find_lost is not None or self._unanswered):
            # Also after a recorded prediction that is no use: a later create may be the lost one.
            # (A fresh scene with no loss in this process skips this: nothing to look for.)
            key = _lost_key(inputs)
            search = self._lost_search(key, request.find_lost)
            if search is not None and key is not None:
                prediction = await self._find_lost(key, search)
                # Forgotten only once looked for: an attempt cancelled mid-search leaves it
                # to the next.
                self._unanswered.pop(key, None)
        if prediction is None:
            prediction = await self._create(inputs, request.unique_inputs)
        pid: str = prediction["id"]
        if self._finished(prediction):
            # `Prefer: wait` brought the result: nothing is left to wait on, so the id is
            # recorded while the image downloads rather than before.
            if on_prediction is None:
                return await self._fetch(prediction)
            checkpoint, fetched = await asyncio.gather(
                on_prediction(pid), self._fetch(prediction), return_exceptions=True)
            if isinstance(fetched, ImageResult) and not isinstance(
                    checkpoint, asyncio.CancelledError):
                # The image is made and paid for: hand it over even if recording the id
                # failed (a stopped job), so it is stored and billed, not lost.
                return fetched
            for outcome in (checkpoint, fetched):  # a stopped job outranks a failed download
                if isinstance(outcome, BaseException):
                    raise outcome
            raise AssertionError("unreachable: gather gave neither a result nor an error")
        if on_prediction is not None:
            try:
                await on_prediction(pid)
            except BaseException:
                # Nobody can resume a prediction whose id was not recorded: stop paying for it.
                await self._cancel_quietly(pid)
                raise
        try:
            prediction = await self._wait_for(prediction)
        except asyncio.CancelledError:
            await self._cancel_quietly(pid)
            raise
        return await self._fetch(prediction)

    @staticmethod
    def _finished(prediction: dict[str, Any]) -> bool:
        return prediction["status"] in FINAL or bool(first_output_url(prediction["output"]))

    async def _fetch(self, prediction: dict[str, Any]) -> ImageResult:
        """Download a finished prediction's image (or raise the error its outcome calls for)."""
        pid: str = prediction["id"]
        url = self._output_url(prediction)
        try:
            data, extension = await download_image(
                self._http, url, headers=self._headers_for(url), timeout=_DOWNLOAD_TIMEOUT
            )
        except RetryableImageError as exc:
            # Billed all the same; the next attempt resumes this prediction to download again.
            raise DownloadError(str(exc), prediction_id=pid, cost=self.price_per_image,
                                retry_after=exc.retry_after) from exc
        log.info("replicate: prediction %s produced a %s (%d bytes)", pid, extension, len(data))
        return ImageResult(
            data=data,
            extension=extension,
            # A data: URI is the image itself, megabytes of text: not worth keeping as a source.
            source_url=None if url.startswith("data:") else url,
            prediction_id=pid,
            cost=self.price_per_image,
        )

    # --- the prediction's life -----------------------------------------------------------------

    async def _create(self, inputs: dict[str, Any], unique: bool) -> dict[str, Any]:
        """Create a prediction for ``inputs``. When the answer is lost (or is an error that a
        prediction made all the same may hide) and the inputs are the scene's own (``unique``),
        the next attempt with them looks for that prediction before creating anew."""
        body: dict[str, Any] = {"input": inputs}
        if self._version:
            body["version"] = self._version
        headers = {
            **self._auth(),
            "Prefer": f"wait={self._wait}",
            # If the attempt dies while the create is in flight we never learn the id; unless a
            # later attempt finds and adopts it, Replicate stops it once the attempt's time is up.
            "Cancel-After": f"{max(5, math.ceil(self._settings.image_timeout))}s",
        }
        timeout = httpx.Timeout(10.0, read=self._wait + 5.0, pool=None)
        sent_at = datetime.now(UTC)
        try:
            response = await self._send("POST", self._create_url, "create", body, headers, timeout)
        except asyncio.CancelledError:
            log.warning("replicate: attempt cancelled while creating a prediction (id unknown)")
            if unique:  # perhaps still connecting: then the lookup costs one listing, no more
                self._note_unanswered(inputs, sent_at)
            raise
        except RetryableImageError as exc:
            if unique and isinstance(exc.__cause__, httpx.HTTPError) and not _unsent(exc.__cause__):
                self._note_unanswered(inputs, sent_at)  # Replicate may have made it all the same
            raise
        try:
            prediction = self._parse(response, "create", missing_model=True)
        except RetryableImageError:
            # A gateway's 5xx or an unreadable 2xx may stand for a prediction that was made.
            if unique and (response.status_code >= 500 or response.is_success):
                self._note_unanswered(inputs, sent_at)
            raise
        log.info("replicate: created prediction %s (%s)", prediction["id"], prediction["status"])
        return prediction

    async def _resume(self, pid: str) -> dict[str, Any] | None:
        """The earlier prediction if it is still worth waiting for, else None (create anew)."""
        if not _ID.fullmatch(pid):
            log.warning("replicate: not resuming malformed prediction id %r", pid[:80])
            return None
        response = await self._send("GET", self._get_url(pid), "resume", None, self._auth())
        if response.status_code == 404:
            log.info("replicate: prediction %s not found; creating a new one", pid)
            return None
        return await self._worth_resuming(self._parse(response, "resume"))

    async def _worth_resuming(self, prediction: dict[str, Any]) -> dict[str, Any] | None:
        """``prediction`` if it is running or has its image; else None (cancelling one whose
        status we cannot interpret, which might never end)."""
        pid, status = prediction["id"], prediction["status"]
        if status in RUNNING or (status == "succeeded" and first_output_url(prediction["output"])):
            log.info("replicate: resuming prediction %s (%s)", pid, status)
            return prediction
        if status not in FINAL:
            await self._cancel_quietly(pid)
        log.info("replicate: prediction %s ended %s; creating a new one", pid, status)
        return None

    def _note_unanswered(self, inputs: dict[str, Any], sent_at: datetime) -> None:
        """A create for ``inputs`` was sent and its answer never came: the next attempt with the
        same inputs looks for the prediction it may have made."""
        key = _lost_key(inputs)
        if key is not None:
            self._drop_stale_unanswered()
            self._unanswered.setdefault(key, sent_at)

    def _drop_stale_unanswered(self) -> None:
        """Forget losses older than Replicate keeps predictions listed (scenes that never
        retried: their job failed, stopped or was cancelled)."""
        stale = datetime.now(UTC) - _RETENTION
        for old in [k for k, when in self._unanswered.items() if when < stale]:
            del self._unanswered[old]

    def _lost_search(self, key: str | None, asked: LostSearch | None) -> LostSearch | None:
        """Where to look before creating: where the job asks (a run that died), widened to an
        earlier attempt of this process whose create went unanswered."""
        self._drop_stale_unanswered()
        sent_at = self._unanswered.get(key) if key is not None else None
        if sent_at is None:
            return asked
        since = sent_at if asked is None else min(sent_at, _aware(asked.since))
        return LostSearch(since=since, listed_after=datetime.now(UTC))

    async def _find_lost(self, key: str, search: LostSearch) -> dict[str, Any] | None:
        """The prediction an earlier attempt created for exactly the inputs behind ``key``
        (``_lost_key``; their seed is random) without learning its id (its worker died while the create was held by
        ``Prefer: wait``, or the answer never came), looked for among the account's predictions
        made since ``search.since``. None when there is none worth resuming. Best effort: when
        the list cannot be read in time the caller creates anew; only a rejected key is an
        error."""
        since = _aware(search.since)
        since = max(since, datetime.now(UTC) - _RETENTION) - _CLOCK_SKEW
        try:
            found = await self._recent_predictions(since, _aware(search.listed_after))
        except AccountError:
            raise
        except (ImageGenerationError, TimeoutError, httpx.InvalidURL) as exc:
            log.warning("replicate: could not look for a lost prediction (%s)", exc)
            return None
        # (A walk kept from earlier may reach further back than this caller asked.)
        candidates = [p for p in found.get(key, []) if (_created_at(p) or since) >= since]
        if not candidates:
            return None
        # Of several tries at the same request, the one with an image, else one still running.
        prediction = min(candidates, key=lambda p: (
            not (p["status"] == "succeeded" and first_output_url(p["output"])),
            p["status"] not in RUNNING))
        found[key].remove(prediction)  # handed to one caller only
        log.info("replicate: found prediction %s, created by an attempt that never learned its id",
                 prediction["id"])
        return await self._worth_resuming(prediction)

    async def _recent_predictions(
        self, since: datetime, listed_after: datetime
    ) -> dict[str, list[dict[str, Any]]]:
        """This model's predictions made since ``since``, by their inputs, from a listing made
        after ``listed_after``. One walk of ``GET /predictions`` serves every scene of a run
        that resumes together: a worker restarting with hundreds of scenes in flight lists the
        account once, not once per scene."""
        async with self._lost_lock:
            cached = self._lost
            if (cached is not None and cached[1] <= since and cached[3] >= listed_after
                    and time.monotonic() - cached[0] < _LOST_FRESH):
                return cached[2]
            # The limit is the walk's own, not the wait for the lock: scenes queued behind a
            # walk that began before their loss are served by the next one.
            async with asyncio.timeout(_LOST_TIMEOUT):
                return await self._walk_predictions(since)

    async def _walk_predictions(self, since: datetime) -> dict[str, list[dict[str, Any]]]:
        """Walk ``GET /predictions`` back to ``since``; keep the result for later lookups."""
        walked_at, walk_started = time.monotonic(), datetime.now(UTC)
        found: dict[str, list[dict[str, Any]]] = {}
        url: str | httpx.URL | None = httpx.URL(f"{self._base}/predictions")
        pages = 0
        while url is not None and pages < _LOST_PAGES:
            response = await self._send("GET", url, "list", None, self._auth())
            results, url = self._page(response)
            pages += 1
            for prediction in results:
                created = _created_at(prediction)
                if created is not None and created < since:
                    url = None  # newest first: the rest are older still
                    break
                key = _lost_key(prediction.get("input"))
                if key is not None and prediction.get("model") in (None, self._model_name):
                    found.setdefault(key, []).append(prediction)
        if url is not None:
            log.warning("replicate: stopped looking for lost predictions after %d pages",
                        pages)
        self._lost = (walked_at, since, found, walk_started)
        return found

    def _page(self, response: httpx.Response) -> tuple[list[dict[str, Any]], str | None]:
        """One page of ``GET /predictions``: its well-formed predictions and the next page's URL
        (only on the API's own origin, like every URL the key is sent to)."""
        if not response.is_success:
            raise self._error(response, "list", missing_model=False)
        try:
            page = response.json()
            results, following = page["results"] or [], page.get("next")
            predictions = [
                {"output": None, "status": "starting", **p} for p in results
                if isinstance(p, dict) and isinstance(p.get("id"), str) and _ID.fullmatch(p["id"])
            ]
        except (ValueError, KeyError, TypeError) as exc:
            raise RetryableImageError("Replicate list: malformed page") from exc
        if isinstance(following, str):
            parts, base = urllib.parse.urlsplit(following), urllib.parse.urlsplit(self._base)
            if (parts.scheme, parts.netloc) == (base.scheme, base.netloc):
                return predictions, following
        return predictions, None

    async def _wait_for(self, prediction: dict[str, Any]) -> dict[str, Any]:
        """Poll until the prediction has output or a final status."""
        pid = prediction["id"]
        failures = 0
        while True:
            status = prediction["status"]
            if self._finished(prediction):
                return prediction
            if status not in RUNNING:
                # A status we cannot interpret might never change: stop it rather than wait.
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

    def _output_url(self, prediction: dict[str, Any]) -> str:
        """The image to download, or the error the prediction's outcome calls for."""
        pid, status = prediction["id"], prediction["status"]
        url = first_output_url(prediction["output"])
        if url and status in RUNNING | {"succeeded"}:
            return url
        error = self._redact(str(prediction.get("error") or "no error message"))
        if status == "succeeded":  # billed, but there is nothing to download
            gone = "its outputs were deleted" if prediction.get("data_removed") else "no output"
            raise DownloadError(
                f"prediction {pid} succeeded with {gone}",
                prediction_id=pid,
                cost=self.price_per_image,
            )
        if status == "failed" and "nsfw" in error.lower():
            raise flagged_as_nsfw("Replicate's", pid)
        if status == "aborted":
            raise RetryableImageError(f"prediction {pid} was aborted: its deadline passed first")
        raise RetryableImageError(f"prediction {pid} ended {status}: {error}")

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

    def _headers_for(self, url: str) -> dict[str, str]:
        """Replicate's file hosts (and the API's own origin) may see the key; no one else may."""
        parts, base = urllib.parse.urlsplit(url), urllib.parse.urlsplit(self._base)
        host = parts.hostname or ""
        same_origin = (parts.scheme, parts.netloc) == (base.scheme, base.netloc)
        delivery = parts.scheme == "https" and (
            host == "replicate.delivery" or host.endswith(".replicate.delivery")
        )
        return self._auth() if same_origin or delivery else {}

    def _get_url(self, pid: str) -> str:
        return f"{self._base}/predictions/{pid}"

    def _poll_url(self, prediction: dict[str, Any]) -> str:
        """The prediction's ``urls.get``, if it is on the configured API origin; else the URL
        made from the base. The key goes to no other host, whatever an answer says."""
        pid, urls = prediction["id"], prediction.get("urls")
        url = urls.get("get") if isinstance(urls, dict) else None
        if isinstance(url, str):
            parts, base = urllib.parse.urlsplit(url), urllib.parse.urlsplit(self._base)
            same_origin = (parts.scheme, parts.netloc) == (base.scheme, base.netloc)
            plain = not parts.query and not parts.fragment
            if same_origin and plain and parts.path.endswith(f"/predictions/{pid}"):
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
            if what == "create" and not _unsent(exc):
                # Replicate may have made (and will bill) it: ``_create`` notes it, so that a
                # retry with the scene's own inputs looks for it before creating anew.
                log.warning("replicate: create failed after sending (%s)", type(exc).__name__)
            detail = self._redact(str(exc)) or "no detail"
            raise RetryableImageError(f"Replicate {what}: {type(exc).__name__} ({detail})") from exc

    def _parse(
        self, response: httpx.Response, what: str, *, missing_model: bool = False
    ) -> dict[str, Any]:
        """The prediction in a 2xx answer, or the translated error."""
        if not response.is_success:
            raise self._error(response, what, missing_model=missing_model)
        malformed = RetryableImageError(f"Replicate {what}: malformed prediction in the answer")
        try:
            prediction = dict(response.json())
            pid = prediction["id"]
        except (ValueError, KeyError, TypeError) as exc:
            raise malformed from exc
        if not isinstance(pid, str) or not _ID.fullmatch(pid):  # the id goes into URL paths
            raise malformed
        prediction.setdefault("output", None)
        prediction.setdefault("status", "starting")
        return prediction

    def _error(
        self, response: httpx.Response, what: str, *, missing_model: bool
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
        if code == 404 and missing_model:
            return AccountError(
                f"Replicate has no model {self._model!r} at {self._base} (HTTP 404). Check "
                f"STORYBOARD_IMAGE_MODEL (default {FLUX_SCHNELL}) and REPLICATE_BASE_URL"
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
