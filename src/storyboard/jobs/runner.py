"""Making a job's scene images: ``SceneRunner``, and the image request of each scene.

Scenes are generated concurrently (bounded per job and per process), each with the spec's
retries (3 attempts, 2 s then 4 s backoff, 120 s per attempt, never sooner than the provider's
``Retry-After``). After every scene, the last one too, the job row gets the new ``progress``
and ``storyboard_data`` and the prediction ledger its outcome, in one transaction: a kill after
any image is stored never pays for that image again. A scene whose prediction was started polls
that prediction instead of paying for a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any

from pydantic import TypeAdapter
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from ..db import RUNNABLE_STATUSES
from ..db.ledger import cost_columns
from ..db.models import utcnow
from ..errors import AccountError, ImageGenerationError, RetryableImageError
from ..images import DownloadError, ImageRequest, ImageResult, LostSearch
from ..images.base import PredictionReport
from ..plan import Plan, cast_names
from ..schemas import JobStatus, StoryboardEntry, VideoProgress
from ..storage import save_image, url_for
from ..webhooks import event_hooks
from .accounting import RunLedger
from .budget import RunBudget
from .cache import CacheHit, ImageCache, request_key
from .progress import generating_progress
from .runtime import JobRuntime

__all__ = [
    "ACTIVE",
    "JobStopped",
    "SceneRunner",
    "cast_of",
    "choose_seeds",
    "job_seed",
    "scene_request",
    "storyboard_json",
    "watch_job",
]

log = logging.getLogger("storyboard.jobs")

ACTIVE = (JobStatus.PARSING.value, JobStatus.GENERATING_STORYBOARD.value)


class JobStopped(BaseException):
    """The row left the active statuses under us (cancelled, or finished by another worker).

    A BaseException, like CancelledError, so no provider's `except Exception` can swallow it."""


# Serialised in pydantic's core: the whole storyboard is rewritten after every scene.
_STORYBOARD = TypeAdapter(list[StoryboardEntry])


def storyboard_json(entries: list[StoryboardEntry]) -> str:
    return _STORYBOARD.dump_json(entries).decode()


def scene_request(
    entry: StoryboardEntry, params: dict[str, Any], scenes_total: int, output_format: str,
    find_lost: LostSearch | None = None, unique_inputs: bool = False,
    plan: Plan | None = None, report: PredictionReport | None = None,
) -> ImageRequest:
    """The image request for one scene of a job with ``params`` (and ``plan``, whose
    characters' names the sketch renderer letters beside their figures)."""
    return ImageRequest(
        prompt=entry.scene.image_prompt,
        aspect_ratio=str(params.get("aspect_ratio") or "16:9"),
        seed=entry.seed if entry.seed is not None else job_seed(params, entry),
        output_format=output_format,
        scene=entry.scene,
        scenes_total=scenes_total,
        resume_prediction_id=entry.prediction_id,
        find_lost=find_lost,
        unique_inputs=unique_inputs,
        cast=cast_of(entry, plan),
        report=report,
    )


def cast_of(entry: StoryboardEntry, plan: Plan | None) -> tuple[str, ...]:
    """The names of the characters in the scene's frame (their ids where the plan has none)."""
    return tuple(cast_names(entry.scene.characters, plan))


_SEED_SPACE = 2**31


def job_seed(params: dict[str, Any], entry: StoryboardEntry,
             base: int | None = None) -> int | None:
    """One seed per job, offset per scene: repeatable, yet the frames differ. ``base`` is the
    job's own seed, else the one drawn for this run."""
    seed = params.get("seed")
    if seed is None:
        seed = base
    return None if seed is None else (int(seed) + entry.scene.scene_number - 1) % _SEED_SPACE


def choose_seeds(entries: list[StoryboardEntry], params: dict[str, Any]) -> None:
    """Give every scene still to draw its seed before the provider is asked for it: the job's
    base seed offset per scene. The base is the job's own seed, else one drawn at random for
    this run (which also makes each scene's request unlike any other job's, so a provider can
    look a lost prediction up by its inputs)."""
    base = secrets.randbelow(_SEED_SPACE)
    for entry in entries:
        if entry.seed is None and entry.generation_status == "pending":
            entry.seed = job_seed(params, entry, base)


async def _shielded(work: Awaitable[None]) -> None:
    """Finish ``work`` even when the caller is being cancelled."""
    with contextlib.suppress(Exception):
        await asyncio.shield(asyncio.ensure_future(work))


async def watch_job(rt: JobRuntime, job_id: int) -> None:
    """Keep the job's lease alive while it runs (planning too), and stop it (``JobStopped``)
    when its row leaves the runnable statuses (a cancel from any process) or another worker has
    taken it over. Looks every ``status_poll_interval``, or at once when nudged (a cancel in
    this process)."""
    s = rt.settings
    nudged = rt.nudges_for(job_id)
    try:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(nudged.wait(),
                                       min(s.status_poll_interval, s.lease_seconds / 3))
            nudged.clear()
            renewed = await rt.writer.update(
                job_id, only_status=RUNNABLE_STATUSES, held_by=rt.owner, touch=False,
                lease_expires_at=utcnow() + timedelta(seconds=s.lease_seconds))
            if not renewed:
                raise JobStopped
    finally:
        rt.forget_nudges(job_id)


class SceneRunner:
    """Makes scene images for one job and writes its progress; shared by jobs and regeneration."""

    def __init__(self, rt: JobRuntime, job_id: int, params: dict[str, Any],
                 entries: list[StoryboardEntry], concurrency: int,
                 plan: Plan | None = None, books: RunLedger | None = None) -> None:
        self.rt = rt
        self.job_id = job_id
        self.params = params
        self.entries = entries
        self.plan = plan
        self.concurrency = concurrency
        self.scene_slots = asyncio.Semaphore(concurrency)
        self.in_flight: set[int] = set()
        self.image_seconds: list[float] = []
        self.produced = 0
        # Ledger statements owed, written with each save.
        self.books = books if books is not None else RunLedger(rt, job_id)
        # Identical image requests share one image (paid providers, unless turned off).
        caching = (rt.settings.image_cache == "on" and params.get("cache", True) is not False
                   and rt.provider.price_per_image > 0)
        self.cache = ImageCache(rt, job_id) if caching else None
        # What the job may still spend (paid providers only).
        self.budget = RunBudget(rt, job_id, params) if rt.provider.price_per_image > 0 else None
        self.media_dir = rt.settings.media_dir  # resolved once: it walks the path on disk
        # The ``scene`` webhook's hook, when the job asked for it (none costs nothing).
        self.scene_events = event_hooks(params, job_id=job_id, event="scene")
        # Whether the scenes' seeds are ours alone (see ``choose_seeds``); the scenes an
        # interrupted run may have asked the provider for without learning the prediction's id,
        # and where to look for those.
        self.unique_seeds = False
        self.may_be_lost: set[int] = set()
        self.lost_search: LostSearch | None = None

    # -- progress ---------------------------------------------------------------------------
    def progress(self) -> VideoProgress:
        return generating_progress(self.entries, self.in_flight, self.image_seconds,
                                   self.concurrency)

    def storyboard_json(self) -> str:
        return _STORYBOARD.dump_json(self.entries).decode()

    async def save(self, *, scene_done: bool = False, **extra: Any) -> None:
        """Write progress and storyboard (and ``extra``) unless the job stopped being active;
        the ledger statements owed are written either way, and the cost columns with them.
        ``scene_done``: a scene just finished (the job's ``scene`` webhook, if it asked)."""
        ledger = self.books.take()
        ok = await self.rt.writer.update(
            self.job_id,
            only_status=ACTIVE,
            held_by=self.rt.owner,  # a run that lost its lease stops here, not at its next renew
            ledger=ledger,
            after=self.scene_events if scene_done else (),
            progress=self.progress().model_dump_json(),
            storyboard_data=self.storyboard_json(),
            **cost_columns(),
            **extra,
        )
        if not ok:
            if ledger:  # what was spent is the job's whoever holds it now: its costs too
                await self.rt.writer.update(self.job_id, touch=False,
                                            **cost_columns())
            raise JobStopped

    # -- one scene --------------------------------------------------------------------------
    def _wait_seconds(self, state: RetryCallState) -> float:
        s = self.rt.settings
        delay = min(s.retry_base_delay * 2 ** (state.attempt_number - 1), s.retry_max_delay)
        exc = state.outcome.exception() if state.outcome else None
        hint = getattr(exc, "retry_after", None)
        return max(delay, float(hint)) if hint else delay

    async def _attempt(self, entry: StoryboardEntry, attempt: int) -> ImageResult:
        s = self.rt.settings

        async def checkpoint(prediction_id: str) -> None:
            entry.prediction_id = prediction_id
            self.books.created(entry, prediction_id)  # in the ledger before it is waited on
            await self.save()

        lost = entry.scene.scene_number in self.may_be_lost
        request = scene_request(entry, self.params, len(self.entries), s.output_format,
                                self.lost_search if lost else None, self.unique_seeds,
                                self.plan, report=self.books.report_for(entry))
        try:
            # Waiting for a slot or for the rate limit happens here, on our side; the 120 s
            # limit is the provider's time for the image, so it starts after.
            if self.rt.image_slots is not None:
                await self.rt.image_slots.acquire()
            try:
                if self.budget is not None and await self.budget.before_create(entry):
                    self.books.reserved.add(entry.scene.scene_number)
                if self.rt.before_image is not None:
                    await self.rt.before_image()
                async with asyncio.timeout(s.image_timeout):
                    return await self.rt.provider.generate(request, on_prediction=checkpoint)
            finally:
                self.books.attempt_ended(entry)
                if self.rt.image_slots is not None:
                    self.rt.image_slots.release()
        except TimeoutError as exc:
            raise RetryableImageError(f"timed out after {s.image_timeout:g}s") from exc
        except RetryableImageError as exc:
            if (exc.retry_after and self.rt.on_throttle is not None
                    and not isinstance(exc, DownloadError)):  # a file host's limit is its own
                await self.rt.on_throttle(exc.retry_after)  # slow the whole fleet down
            raise
        except (ImageGenerationError, JobStopped):
            raise
        except Exception as exc:  # a provider bug must cost one attempt, not the whole job
            raise RetryableImageError(f"{type(exc).__name__}: {exc}") from exc

    async def _generate(self, entry: StoryboardEntry) -> ImageResult:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.rt.settings.max_retries),
            wait=self._wait_seconds,
            retry=retry_if_exception_type(RetryableImageError),
            sleep=self.rt.sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                number = attempt.retry_state.attempt_number
                try:
                    return await self._attempt(entry, number)
                except ImageGenerationError as exc:
                    if isinstance(exc, DownloadError) and exc.prediction_id:
                        # Billed, though the image never came.
                        self.books.settled(exc.prediction_id, "succeeded", exc.cost)
                    log.warning("Job %s: Attempt %d failed - %s", self.job_id, number, exc)
                    raise
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    def _cache_key(self, entry: StoryboardEntry) -> str | None:
        """The scene's request's cache key, when the cache is on for this run."""
        if self.cache is None:
            return None
        request = scene_request(entry, self.params, len(self.entries),
                                self.rt.settings.output_format, plan=self.plan)
        try:
            return request_key(self.rt.provider, request)
        except ImageGenerationError:  # inputs the provider refuses: its own attempt says so
            return None

    async def _reuse(self, entry: StoryboardEntry, hit: CacheHit) -> None:
        """Complete the scene with an identical request's stored image: nothing is paid."""
        number = entry.scene.scene_number
        entry.image_url = await asyncio.to_thread(
            self.cache.copy_into_job, hit, number, len(entry.versions) + 1)  # type: ignore[union-attr]
        entry.source_url, entry.prediction_id = hit.source_url, None
        entry.cached = True
        entry.cache_source = {"job_id": hit.job_id, "scene_number": hit.scene_number}
        entry.generation_status = "completed"
        entry.drawn_prompt, entry.stale = entry.scene.image_prompt, False
        log.info("Job %s: Scene %d completed - %s (cached: the same request as job %s scene %s)",
                 self.job_id, number, entry.image_url, hit.job_id, hit.scene_number)
        self.in_flight.discard(number)
        await self.save(scene_done=True)

    async def run_scene(self, entry: StoryboardEntry) -> None:
        """Make one scene's image (with retries) and record the outcome."""
        if entry.generation_status in ("completed", "failed"):
            return
        async with self.scene_slots:
            number, total = entry.scene.scene_number, len(self.entries)
            self.in_flight.add(number)
            entry.generation_status, entry.error = "generating", None
            log.info("Job %s: Generating image for scene %d/%d", self.job_id, number, total)
            started = self.rt.clock()
            key = self._cache_key(entry)
            try:
                if key is not None:
                    assert self.cache is not None
                    hit = await self.cache.reuse_or_claim(key, number)
                    if hit is not None:
                        await self._reuse(entry, hit)
                        return
                # No write here: the checkpoint (when the provider has a prediction id) and the
                # outcome below are the writes that matter; the progress written after the
                # previous scene already names this one.
                result = await self._generate(entry)
            except AccountError:
                if key is not None:
                    await _shielded(self.cache.failed(key))  # type: ignore[union-attr]
                raise
            except ImageGenerationError as exc:
                entry.generation_status = "failed"
                entry.error = str(exc)
                reason = "All retries exhausted" if isinstance(exc, RetryableImageError) else exc
                log.error("Job %s: Scene %d failed - %s", self.job_id, number, reason)
                if key is not None:
                    await self.cache.failed(key)  # type: ignore[union-attr]
            except BaseException:  # stopped or cancelled: the claim is no one's any more
                if key is not None:
                    await _shielded(self.cache.failed(key))  # type: ignore[union-attr]
                raise
            else:
                # In a thread: hundreds of scenes finishing together must not stall the loop.
                path = await asyncio.to_thread(
                    save_image, self.media_dir, self.job_id, number, result.data,
                    result.extension, version=len(entry.versions) + 1)
                entry.image_url = url_for(self.media_dir, path)
                entry.source_url = result.source_url
                entry.generation_status = "completed"
                entry.drawn_prompt, entry.stale = entry.scene.image_prompt, False
                if result.prediction_id:
                    self.books.settled(result.prediction_id, "succeeded", result.cost)
                if key is not None:  # written with the scene, just below
                    self.books.also(self.cache.made(  # type: ignore[union-attr]
                        key, entry.image_url, result.source_url, result.prediction_id))
                self.produced += 1
                self.image_seconds.append(self.rt.clock() - started)
                log.info("Job %s: Scene %d completed - %s", self.job_id, number, entry.image_url)
            finally:
                self.in_flight.discard(number)
            # Every scene, the last one too, is durable as it finishes (with its ledger row):
            # a kill after this never pays for its image again.
            await self.save(scene_done=True)

    async def run_all(self) -> None:
        """Run every unfinished scene concurrently; stop everything on an AccountError/stop."""
        try:
            async with asyncio.TaskGroup() as group:
                watcher = group.create_task(watch_job(self.rt, self.job_id))
                scenes = [group.create_task(self.run_scene(e)) for e in self.entries]
                await asyncio.gather(*scenes)
                watcher.cancel()
        except* AccountError as eg:
            raise eg.exceptions[0] from None
        except* JobStopped:
            raise JobStopped from None


