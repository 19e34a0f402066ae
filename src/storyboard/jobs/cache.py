"""The image cache: an image request made once is never paid for twice.

A request identical to one already made (the same provider, model, version and inputs, seed
included) reuses the stored image at no cost: the scene says ``cached`` and which job and scene
it came from, and no prediction is made, so nothing enters the ledger. Identical requests in
flight at once (two jobs, a regeneration racing a run, on any worker of the fleet) make one
prediction: the first claims the request's row in the database (``image_cache``, keyed by a
hash of the request), the others wait for it and reuse its image. A claim carries a deadline
(the attempts' time and a margin): one whose worker died lapses and is taken over; the job that
made the claim may take it back at once (its lease says no one else works on that scene).

Only paid providers are cached (the sketch renderer is free, and draws more than its inputs say);
a random seed (the default) never repeats, so it never hits; a fixed seed, or a scene drawn again
unchanged with the job's own seed, does. ``STORYBOARD_IMAGE_CACHE=off`` or a request's
``"cache": false`` always pays for fresh images.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, Update, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ..db.models import CachedImage, utcnow
from ..images import ImageRequest
from ..storage import path_for_url, url_for

if TYPE_CHECKING:
    from .runtime import JobRuntime

__all__ = ["CacheHit", "ImageCache", "request_key"]

log = logging.getLogger("storyboard.jobs")

_WAIT_STEP = 0.25  # seconds between looks at a request another worker is making


def request_key(provider: object, request: ImageRequest) -> str:
    """What identifies an image request: the provider's own key when it has one (its exact
    inputs to the model), else its name, model and the request's model inputs."""
    own = getattr(provider, "cache_key", None)
    text = own(request) if own is not None else json.dumps(
        [getattr(provider, "name", "?"), getattr(provider, "model", None),
         request.model_input()], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class CacheHit:
    """A stored image to reuse, and where it was made."""

    path: Path
    source_url: str | None
    job_id: int | None
    scene_number: int | None


class ImageCache:
    """The cache as one job's run uses it."""

    def __init__(self, rt: JobRuntime, job_id: int) -> None:
        self.rt, self.job_id = rt, job_id
        self.engine: Engine = rt.engine
        s = rt.settings
        # A claim outlives every attempt of the request (and the backoff between them).
        self.claim_seconds = s.max_retries * (s.image_timeout + s.retry_max_delay) + 30

    async def reuse_or_claim(self, key: str, scene_number: int) -> CacheHit | None:
        """A stored image for ``key`` (waiting for one being made elsewhere), or None when this
        run is to make it (it then holds the claim: ``made`` or ``failed`` must follow)."""
        while True:
            # Through the job writer: in its batch, never waiting on the writer's own locks.
            hit, claimed, wait = await self.rt.writer.call(
                self.job_id, lambda conn: self._try(conn, key, scene_number))
            if hit is not None or claimed:
                return hit
            await self.rt.sleep(wait)

    def _try(self, conn: Connection, key: str,
             scene_number: int) -> tuple[CacheHit | None, bool, float]:
        """(a hit, whether this run now holds the claim, how long to wait otherwise), in
        ``conn``'s transaction."""
        now = utcnow()
        row = conn.execute(select(CachedImage).where(CachedImage.key == key)).first()
        if row is not None and row.status == "done":
            path = path_for_url(self.rt.settings.media_dir, row.image_url or "")
            if path is not None:
                return CacheHit(path, row.source_url, row.job_id, row.scene_number), False, 0
        if row is None:
            table = CachedImage.__table__
            dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
            inserted = conn.execute(dialect.insert(table).values(
                key=key, provider=self.rt.provider.name,
                model=getattr(self.rt.provider, "model", None), status="pending",
                job_id=self.job_id, scene_number=scene_number, claimed_by=self.rt.owner,
                claimed_until=now + timedelta(seconds=self.claim_seconds), created_at=now,
            ).on_conflict_do_nothing(index_elements=["key"]))
            if inserted.rowcount:
                return None, True, 0
            return None, False, _WAIT_STEP  # someone claimed it a moment ago
        c = CachedImage
        # Ours to take: failed, its file gone, its claim lapsed, or a claim of this very
        # scene (an earlier run of this job, which died: this run holds the job now).
        ours = (row.status in ("failed", "done")
                or (row.claimed_until is not None and row.claimed_until < now)
                or (row.job_id == self.job_id and row.scene_number == scene_number))
        if ours:
            # Only as it was read: made meanwhile, it is reused on the next look instead.
            taken = conn.execute(update(c).where(
                c.key == key, c.status == row.status,
                c.claimed_by.is_not_distinct_from(row.claimed_by),
                c.finished_at.is_not_distinct_from(row.finished_at),
            ).values(status="pending", job_id=self.job_id, scene_number=scene_number,
                     claimed_by=self.rt.owner,
                     claimed_until=now + timedelta(seconds=self.claim_seconds),
                     image_url=None, finished_at=None))
            if taken.rowcount:
                return None, True, 0
        return None, False, _WAIT_STEP  # being made elsewhere: look again soon

    def made(self, key: str, image_url: str, source_url: str | None,
             prediction_id: str | None) -> Update:
        """This run made the image: others may reuse it once this is written. A statement for
        the scene's own write (the image, its ledger row and its cache entry in one
        transaction: one commit per image fewer)."""
        c = CachedImage
        return (update(c).where(c.key == key, c.claimed_by == self.rt.owner,
                                c.job_id == self.job_id)
                .values(status="done", image_url=image_url, source_url=source_url,
                        prediction_id=prediction_id, claimed_until=None, finished_at=utcnow()))

    async def failed(self, key: str) -> None:
        """This run could not make it: the next asker tries for itself."""
        c = CachedImage

        def write() -> None:
            with self.engine.begin() as conn:
                conn.execute(update(c).where(c.key == key, c.claimed_by == self.rt.owner,
                                             c.job_id == self.job_id, c.status == "pending")
                             .values(status="failed", claimed_until=None, finished_at=utcnow()))

        await asyncio.to_thread(write)

    def copy_into_job(self, hit: CacheHit, scene_number: int, version: int) -> str:
        """The cached image as this job's own file (a hard link where the disk allows: no
        second copy); its /media URL."""
        media = self.rt.settings.media_dir
        target = media / "jobs" / str(self.job_id) / (
            f"scene-{scene_number:02d}-v{version}{hit.path.suffix}")
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            try:
                os.link(hit.path, target)
            except OSError:
                shutil.copyfile(hit.path, target)
        return url_for(media, target)
