"""Limits per owner, so one user of a shared server cannot crowd out the others.

- Jobs running at once per owner (``STORYBOARD_MAX_RUNNING_PER_OWNER``): counted in the
  database, so the same for every server of the fleet. A new job, or a redraw that would start
  one running again, is refused while the owner has that many pending or running.
- Submissions per minute per owner (``STORYBOARD_SUBMISSIONS_PER_MINUTE``): a rolling minute,
  in Redis when it is configured (the whole fleet counts together), else in this process.

Both answer 429 with ``Retry-After``. Single-user mode has no owners, and no limits.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import Engine

from ..config import Settings
from ..db import RUNNABLE_STATUSES, count_jobs
from ..errors import TooManyRequestsError
from ..jobs.ratelimit import RollingWindow

__all__ = ["OwnerLimits"]

# A running job takes about an image's time; a caller told to wait this long then finds out.
_RUNNING_RETRY_SECONDS = 10


class OwnerLimits:
    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings, self.engine = settings, engine
        self._redis: Any = None
        url = settings.shared_redis_url
        if url and settings.submissions_per_minute:
            import redis

            self._redis = redis.Redis.from_url(url)
        self._submissions = RollingWindow(
            limit=max(1, settings.submissions_per_minute), window=60.0, redis=self._redis,
            prefix=f"{settings.queue_name}:submissions:")

    def check_running(self, owner: str | None, *, adding: int = 1) -> None:
        """Refuse when ``owner`` already has its most jobs pending or running."""
        most = self.settings.max_running_per_owner
        if owner is None or not most:
            return
        running = count_jobs(self.engine, owner=owner, statuses=RUNNABLE_STATUSES)
        if running + adding > most:
            raise TooManyRequestsError(
                f"{owner} has {running} jobs pending or running, the most at once "
                f"(STORYBOARD_MAX_RUNNING_PER_OWNER={most}); try again when one has finished",
                retry_after=_RUNNING_RETRY_SECONDS)

    def check_submission(self, owner: str | None) -> None:
        """A new job: within the running limit, and the minute's submissions (counted)."""
        if owner is None:
            return
        self.check_running(owner)
        if not self.settings.submissions_per_minute:
            return
        wait = self._submissions.try_take(owner)
        if wait > 0:
            raise TooManyRequestsError(
                f"{owner} has submitted {self.settings.submissions_per_minute} jobs in the "
                f"last minute (STORYBOARD_SUBMISSIONS_PER_MINUTE); try again in "
                f"{math.ceil(wait)} s", retry_after=wait)

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()
