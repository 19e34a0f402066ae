"""Replicate as an image provider: one Flux-Schnell prediction per image, downloaded at once.

One ``generate()`` call is one attempt; the job owns retries and the per-attempt timeout. Inputs
are checked against Flux-Schnell's schema before any request. The prediction's id goes to
``on_prediction`` as soon as it exists, so a later attempt resumes it instead of paying twice;
one whose id never arrived (the worker died while a create was held by ``Prefer: wait``, or the
answer was lost) is found again by its model and exact inputs (``replicate/lost.py``).
Waiting ends on output or a final status, whichever comes first (Flux-Schnell fills ``output``
while ``status`` still says ``processing``), and on any status we cannot interpret. A cancelled
attempt cancels its prediction. Outputs are downloaded and verified at once: Replicate deletes
them after an hour.

The HTTP side (the key, polling, cancelling, error translation) is ``replicate/api.py``'s; this
module adds ``DownloadError`` (succeeded and billed, but the image did not arrive) and
``PermanentImageError`` for NSFW refusals and bad options.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from ..config import Settings
from ..errors import PermanentImageError, RetryableImageError
from ..replicate.api import FINAL, RUNNING, ModelRef, ReplicateAPI, unsent, valid_prediction_id
from ..replicate.lost import LostPredictions, lost_key
from ..transport import parse_retry_after
from .base import ImageRequest, ImageResult, PredictionCallback, PredictionReport
from .download import DownloadError, download_image, first_output_url, flagged_as_nsfw

__all__ = [
    "FLUX_SCHNELL",
    "FLUX_SCHNELL_INPUTS",
    "ReplicateClient",
    "build_input",
    "parse_retry_after",
]

log = logging.getLogger(__name__)

FLUX_SCHNELL = "black-forest-labs/flux-schnell"
_DOWNLOAD_TIMEOUT = 60.0

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


class ReplicateClient(ReplicateAPI):
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
        super().__init__(api_key, settings=settings, http_client=http_client,
                         transport=transport, sleep=sleep)
        settings = self._settings
        self.price_per_image: float = settings.image_price
        self._model = settings.image_model.strip()
        self._ref = ModelRef.parse(self._model, setting="STORYBOARD_IMAGE_MODEL",
                                   default=FLUX_SCHNELL)
        self._version = self._ref.version
        self.model = self._model  # as the ledger names it
        self._lost = LostPredictions(self, self._ref.slug)
        self._create_url = self.create_url(self._ref)
        # The wait must end before the job's per-attempt timeout, or the attempt is cancelled
        # before it learns the prediction id and cannot cancel the prediction.
        self._wait = max(1, min(settings.replicate_wait, math.floor(settings.image_timeout) - 1))

    def __repr__(self) -> str:
        return f"ReplicateClient(base_url={self._base!r}, model={self._model!r})"

    def cache_key(self, request: ImageRequest) -> str:
        """What identifies ``request`` here: the model (and version) and the exact inputs it
        is sent, seed included (the image cache's key)."""
        return json.dumps([self.name, self._model, build_input(self._model, request, {})],
                          sort_keys=True)

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
                request.find_lost is not None or self._lost.any_unanswered):
            # Also after a recorded prediction that is no use: a later create may be the lost one.
            # (A fresh scene with no loss in this process skips this: nothing to look for.)
            key = lost_key(inputs)
            search = self._lost.search_for(key, request.find_lost)
            if search is not None and key is not None:
                found, complete = await self._lost.find(key, search)
                if request.report is not None:
                    if found is not None:
                        request.report.found(found["id"], found["status"])
                    else:
                        request.report.not_found(complete=complete)
                prediction = None if found is None else await self._worth_resuming(found)
                self._lost.forget(key)
        if prediction is None:
            prediction = await self._create(inputs, request.unique_inputs, request.report)
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
            prediction = await self._wait_for(prediction, self._finished)
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

    async def _create(self, inputs: dict[str, Any], unique: bool,
                      report: PredictionReport | None = None) -> dict[str, Any]:
        """Create a prediction for ``inputs``. When the answer is lost (or is an error that a
        prediction made all the same may hide), ``report`` hears of it, and, if the inputs are
        the scene's own (``unique``), the next attempt with them looks for that prediction
        before creating anew."""

        def unanswered() -> None:
            if unique:
                self._lost.note_unanswered(inputs, sent_at)
            if report is not None:
                report.unanswered()

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
            unanswered()  # perhaps still connecting: then the lookup costs one listing, no more
            raise
        except RetryableImageError as exc:
            if isinstance(exc.__cause__, httpx.HTTPError) and not unsent(exc.__cause__):
                unanswered()  # Replicate may have made it all the same
            raise
        try:
            prediction = self._parse(response, "create", missing_model=self._ref)
        except RetryableImageError:
            # A gateway's 5xx or an unreadable 2xx may stand for a prediction that was made.
            if response.status_code >= 500 or response.is_success:
                unanswered()
            raise
        log.info("replicate: created prediction %s (%s)", prediction["id"], prediction["status"])
        return prediction

    async def _resume(self, pid: str) -> dict[str, Any] | None:
        """The earlier prediction if it is still worth waiting for, else None (create anew)."""
        if not valid_prediction_id(pid):
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

    async def prediction_outcome(self, prediction_id: str) -> tuple[str, float] | None:
        """How prediction ``prediction_id`` ended and what it was billed, for the ledger: an
        image is billed when it was made (Flux-Schnell is priced per output image), so
        ``succeeded`` costs the price and ``failed``, ``canceled`` or ``aborted`` nothing. One
        still running is no one's any more (its job has finished): it is cancelled, and settled
        by the answer. None when Replicate cannot be asked."""
        if not valid_prediction_id(prediction_id):
            return None
        try:
            response = await self._send("GET", self._get_url(prediction_id), "outcome", None,
                                        self._auth())
            prediction = self._parse(response, "outcome")
            if prediction["status"] in RUNNING:
                url = f"{self._base}/predictions/{prediction_id}/cancel"
                response = await self._send("POST", url, "cancel", None, self._auth())
                prediction = self._parse(response, "cancel")
        except (RetryableImageError, PermanentImageError) as exc:
            log.warning("replicate: could not settle prediction %s (%s)", prediction_id, exc)
            return None
        status = prediction["status"]
        if status in RUNNING:
            return None
        billed = status == "succeeded" and (bool(first_output_url(prediction["output"]))
                                            or bool(prediction.get("data_removed")))
        return status, self.price_per_image if billed else 0.0

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
