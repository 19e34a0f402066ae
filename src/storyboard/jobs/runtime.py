"""What a running job needs from the outside world, passed in rather than patched."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from ..config import Settings, get_settings
from ..db import JobWriter, get_engine
from ..images import ImageProvider, make_provider
from ..planning import Planners
from ..replicate import ReplicateAPI
from .ratelimit import ImageRateLimiter

__all__ = ["JobRuntime", "pid_namespace", "worker_identity"]


def pid_namespace() -> str:
    """Which process-id space this process lives in ("" where the system does not say):
    containers sharing a host name each have their own, with the same numbers in each."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return ""


def worker_identity() -> str:
    """host:pid:random:pid-namespace - unique per runtime, and tells which process held a
    lease."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}:{pid_namespace()}"


@dataclass
class JobRuntime:
    """Settings, database, image provider, planners and the clocks of one process's jobs.

    ``image_slots`` caps image requests in flight across every job on this event loop;
    ``before_image`` is awaited before each image creation (the fleet-wide rate limiter).
    """

    settings: Settings
    engine: Engine
    provider: ImageProvider
    image_slots: asyncio.Semaphore | None = None
    before_image: Callable[[], Awaitable[None]] | None = None
    on_throttle: Callable[[float], Awaitable[None]] | None = None
    rate_limiter: ImageRateLimiter | None = None
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    clock: Callable[[], float] = time.monotonic
    owner: str = field(default_factory=lambda: worker_identity())
    owns_provider: bool = field(default=False, repr=False)
    writer: JobWriter = field(init=False, repr=False)
    planners: Planners = field(init=False, repr=False)
    # Jobs running on this runtime now: a job runs at most once per process, however many
    # messages for it arrive (the lease is this process's, so a claim cannot tell them apart).
    running: set[int] = field(init=False, repr=False, default_factory=set)

    def __post_init__(self) -> None:
        # Every job on this loop shares one writer, so their progress writes share commits.
        self.writer = JobWriter(self.engine)
        # A language model on Replicate shares the image provider's client (its key and pool).
        shared = self.provider if isinstance(self.provider, ReplicateAPI) else None
        self.planners = Planners(self.settings, replicate_api=shared)
        self._nudges: dict[int, asyncio.Event] = {}

    def nudge(self, job_id: int) -> None:
        """Make a running job look at its row now (a cancel just landed), not at its next poll.
        Call on this runtime's event loop."""
        event = self._nudges.get(job_id)
        if event is not None:
            event.set()

    def nudges_for(self, job_id: int) -> asyncio.Event:
        """The event ``nudge`` sets for ``job_id``; ``forget_nudges`` when the job is done."""
        return self._nudges.setdefault(job_id, asyncio.Event())

    def forget_nudges(self, job_id: int) -> None:
        self._nudges.pop(job_id, None)

    @classmethod
    def create(
        cls, settings: Settings | None = None, provider: ImageProvider | None = None
    ) -> JobRuntime:
        settings = settings or get_settings()
        owns = provider is None
        rt = cls(
            settings=settings,
            engine=get_engine(settings),
            provider=provider or make_provider(settings),
            owns_provider=owns,
        )
        if rt.provider.name == "replicate" and settings.image_rate_limit > 0:
            rt.use_rate_limiter(ImageRateLimiter(
                limit=settings.image_rate_limit, window=settings.image_rate_window,
                redis_url=settings.shared_redis_url, namespace=settings.queue_name))
        return rt

    def use_rate_limiter(self, limiter: ImageRateLimiter) -> None:
        self.rate_limiter = limiter
        self.before_image = limiter.acquire
        self.on_throttle = limiter.throttled

    async def aclose(self) -> None:
        self.writer.close()
        await self.planners.aclose()
        if self.owns_provider:
            await self.provider.aclose()
        if self.rate_limiter is not None:
            self.rate_limiter.close()
