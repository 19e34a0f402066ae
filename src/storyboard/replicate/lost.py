"""Finding a prediction whose id was lost, so it is adopted instead of paid for twice.

A create can reach Replicate and make (and bill) a prediction while its answer never reaches
us: the worker died during the create's ``Prefer: wait``, or the answer was lost on the way
(the attempt timed out, the connection broke after the request went out, a gateway answered
5xx). Such a prediction is found again among the account's recent predictions by its model and
its exact inputs, which include a seed drawn at random for that scene alone, so no other
request can share them.

Best effort by design: one walk of ``GET /v1/predictions`` (at most ``_LOST_PAGES`` pages, at
most ``_LOST_TIMEOUT`` seconds, back to when the loss can have happened and no further than
Replicate keeps predictions listed) serves every scene that looks within ``_LOST_FRESH``
seconds; when the listing cannot be read, the caller creates anew.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx

from ..errors import AccountError, ImageGenerationError, RetryableImageError
from ..images.base import LostSearch
from ..images.download import first_output_url
from .api import RUNNING, valid_prediction_id

if TYPE_CHECKING:
    from .api import ReplicateAPI

__all__ = ["LostPredictions", "lost_key"]

log = logging.getLogger("storyboard.replicate")

_LOST_PAGES = 10  # pages of 100 searched for a lost prediction: more than a worker has in flight
_LOST_FRESH = 30.0  # seconds one search of the account's predictions serves later lookups
_LOST_TIMEOUT = 10.0  # seconds a search may take before the attempt gives up and creates anew
# Replicate keeps an API prediction's inputs and outputs for an hour: older ones are no use.
_RETENTION = timedelta(hours=1)
# Our clock and Replicate's may disagree; the random seed, not the time, tells predictions apart.
_CLOCK_SKEW = timedelta(minutes=5)


def lost_key(inputs: object) -> str | None:
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


def _created_at(prediction: dict[str, Any]) -> datetime | None:
    try:
        created = datetime.fromisoformat(str(prediction.get("created_at")))
    except ValueError:
        return None
    return created if created.tzinfo is not None else created.replace(tzinfo=UTC)


class LostPredictions:
    """The creates of this process whose answers never came, and the account's recent
    predictions of one model to find them (and those of a run that died) in."""

    def __init__(self, api: ReplicateAPI, model_slug: str) -> None:
        self._api = api
        self._model_slug = model_slug
        # The last walk of the account's predictions: (when, since when, found by inputs, its
        # wall clock start); and the unanswered creates, by inputs.
        self._walk: tuple[float, datetime, dict[str, list[dict[str, Any]]], datetime,
                          bool] | None = None
        self._lock = asyncio.Lock()
        self._unanswered: dict[str, datetime] = {}

    @property
    def any_unanswered(self) -> bool:
        return bool(self._unanswered)

    def note_unanswered(self, inputs: dict[str, Any], sent_at: datetime) -> None:
        """A create for ``inputs`` was sent and its answer never came: the next attempt with the
        same inputs looks for the prediction it may have made."""
        key = lost_key(inputs)
        if key is not None:
            self._drop_stale()
            self._unanswered.setdefault(key, sent_at)

    def forget(self, key: str) -> None:
        """Looked for: an attempt cancelled mid-search leaves it to the next, so only now."""
        self._unanswered.pop(key, None)

    def _drop_stale(self) -> None:
        """Forget losses older than Replicate keeps predictions listed (scenes that never
        retried: their job failed, stopped or was cancelled)."""
        stale = datetime.now(UTC) - _RETENTION
        for old in [k for k, when in self._unanswered.items() if when < stale]:
            del self._unanswered[old]

    def search_for(self, key: str | None, asked: LostSearch | None) -> LostSearch | None:
        """Where to look before creating: where the job asks (a run that died), widened to an
        earlier attempt of this process whose create went unanswered."""
        self._drop_stale()
        sent_at = self._unanswered.get(key) if key is not None else None
        if sent_at is None:
            return asked
        since = sent_at if asked is None else min(sent_at, _aware(asked.since))
        return LostSearch(since=since, listed_after=datetime.now(UTC))

    async def find(self, key: str, search: LostSearch) -> tuple[dict[str, Any] | None, bool]:
        """The prediction an earlier attempt created for exactly the inputs behind ``key``,
        made since ``search.since``, or None; and whether the listing looked in was complete
        (so that None means it was never made). When the list cannot be read in time the
        caller creates anew; only a rejected key is an error."""
        since = _aware(search.since)
        since = max(since, datetime.now(UTC) - _RETENTION) - _CLOCK_SKEW
        try:
            found, complete = await self._recent(since, _aware(search.listed_after))
        except AccountError:
            raise
        except (ImageGenerationError, TimeoutError, httpx.InvalidURL) as exc:
            log.warning("replicate: could not look for a lost prediction (%s)", exc)
            return None, False
        # (A walk kept from earlier may reach further back than this caller asked.)
        candidates = [p for p in found.get(key, []) if (_created_at(p) or since) >= since]
        if not candidates:
            return None, complete
        # Of several tries at the same request, the one with an image, else one still running.
        prediction = min(candidates, key=lambda p: (
            not (p["status"] == "succeeded" and first_output_url(p["output"])),
            p["status"] not in RUNNING))
        found[key].remove(prediction)  # handed to one caller only
        log.info("replicate: found prediction %s, created by an attempt that never learned its id",
                 prediction["id"])
        return prediction, complete

    async def _recent(
        self, since: datetime, listed_after: datetime
    ) -> tuple[dict[str, list[dict[str, Any]]], bool]:
        """This model's predictions made since ``since``, by their inputs, from a listing made
        after ``listed_after``. One walk serves every scene of a run that resumes together: a
        worker restarting with hundreds of scenes in flight lists the account once."""
        async with self._lock:
            cached = self._walk
            if (cached is not None and cached[1] <= since and cached[3] >= listed_after
                    and time.monotonic() - cached[0] < _LOST_FRESH):
                return cached[2], cached[4]
            # The limit is the walk's own, not the wait for the lock: scenes queued behind a
            # walk that began before their loss are served by the next one.
            async with asyncio.timeout(_LOST_TIMEOUT):
                return await self._walk_back(since)

    async def _walk_back(self, since: datetime) -> tuple[dict[str, list[dict[str, Any]]], bool]:
        """Walk ``GET /predictions`` back to ``since``; keep the result for later lookups.
        Complete unless it stopped at the page limit first."""
        api = self._api
        walked_at, walk_started = time.monotonic(), datetime.now(UTC)
        found: dict[str, list[dict[str, Any]]] = {}
        url: str | httpx.URL | None = httpx.URL(f"{api._base}/predictions")
        pages = 0
        while url is not None and pages < _LOST_PAGES:
            response = await api._send("GET", url, "list", None, api._auth())
            results, url = self._page(response)
            pages += 1
            for prediction in results:
                created = _created_at(prediction)
                if created is not None and created < since:
                    url = None  # newest first: the rest are older still
                    break
                key = lost_key(prediction.get("input"))
                if key is not None and prediction.get("model") in (None, self._model_slug):
                    found.setdefault(key, []).append(prediction)
        complete = url is None
        if not complete:
            log.warning("replicate: stopped looking for lost predictions after %d pages",
                        pages)
        self._walk = (walked_at, since, found, walk_started, complete)
        return found, complete

    def _page(self, response: httpx.Response) -> tuple[list[dict[str, Any]], str | None]:
        """One page of ``GET /predictions``: its well-formed predictions and the next page's URL
        (only on the API's own origin, like every URL the key is sent to)."""
        if not response.is_success:
            raise self._api._error(response, "list", missing_model=None)
        try:
            page = response.json()
            results, following = page["results"] or [], page.get("next")
            predictions = [
                {"output": None, "status": "starting", **p} for p in results
                if isinstance(p, dict) and valid_prediction_id(p.get("id"))
            ]
        except (ValueError, KeyError, TypeError) as exc:
            raise RetryableImageError("Replicate list: malformed page") from exc
        if isinstance(following, str) and self._api._same_origin(following):
            return predictions, following
        return predictions, None
