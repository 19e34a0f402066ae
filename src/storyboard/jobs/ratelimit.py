"""One image rate limit for every worker: creations per window, and a shared pause on 429.

The window counter is Dramatiq's ``WindowRateLimiter``: on Redis it is shared by the whole fleet,
in-process (no Redis) it covers one process. When a provider still answers 429, the wait it asks
for is stored beside the counter, so every worker slows down, not only the one that got it.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time

from dramatiq.rate_limits import WindowRateLimiter
from dramatiq.rate_limits.backends import RedisBackend, StubBackend

__all__ = ["ImageRateLimiter"]

_KEY = "storyboard:image-creations"


class ImageRateLimiter:
    """``await acquire()`` before each image creation; ``await throttled(s)`` after a 429."""

    def __init__(self, *, limit: int, window: int, redis_url: str | None = None,
                 namespace: str = "storyboard") -> None:
        if redis_url:
            import redis

            self._redis: redis.Redis | None = redis.Redis.from_url(redis_url)
            backend = RedisBackend(client=self._redis)
        else:
            self._redis = None
            backend = StubBackend()
        self._limiter = WindowRateLimiter(backend, f"{namespace}:{_KEY}", limit=limit,
                                          window=window)
        self._pause_key = f"{namespace}:image-pause-until"
        self._local_pause = 0.0
        self._lock = threading.Lock()
        self.waits = 0  # times a creation had to wait (for tests and benchmarks)

    def _pause_until(self) -> float:
        if self._redis is not None:
            value = self._redis.get(self._pause_key)
            return float(value) if value else 0.0
        return self._local_pause

    def _try_acquire(self) -> float:
        """0 when a slot was taken, else how long to wait before trying again."""
        pause = self._pause_until() - time.time()
        if pause > 0:
            return pause
        with self._limiter.acquire(raise_on_failure=False) as acquired:
            return 0.0 if acquired else 0.25

    async def acquire(self) -> None:
        while True:
            wait = await asyncio.to_thread(self._try_acquire)
            if wait <= 0:
                return
            self.waits += 1
            # Jitter, so a fleet that waited together does not retry together.
            await asyncio.sleep(min(wait, 5.0) * random.uniform(1.0, 1.2))

    def _set_pause(self, seconds: float) -> None:
        until = time.time() + seconds
        if self._redis is not None:
            import redis

            # Keep the later of two pauses; the key expires on its own.
            with self._redis.pipeline() as pipe:
                try:
                    pipe.watch(self._pause_key)
                    current = pipe.get(self._pause_key)
                    if current is None or float(current) < until:
                        pipe.multi()
                        pipe.set(self._pause_key, repr(until), px=max(1, int(seconds * 1000)))
                        pipe.execute()
                except redis.WatchError:
                    pass  # another worker set a pause at the same moment: one is enough
        else:
            with self._lock:
                self._local_pause = max(self._local_pause, until)

    async def throttled(self, seconds: float) -> None:
        """The provider said 429, wait ``seconds``: pause every worker's creations."""
        await asyncio.to_thread(self._set_pause, max(0.0, seconds))

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()
