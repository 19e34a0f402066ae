"""One image rate limit for every worker: creations in a rolling window, and a shared pause.

A provider's "N creations per minute" holds over any minute, not per clock minute, so the
limit is a rolling window: a log of the moments creations were let through (a sorted set in
Redis, shared by the whole fleet, changed by one Lua script so two workers cannot both take the
last slot; in-process, a deque, when there is no Redis). A creation waits exactly until the
oldest in the window leaves it. The window is kept a little longer than the provider's
(``_SLACK``): a request reaches the provider a few milliseconds after it is let through, and
not always in the order let through, so a window kept to the millisecond would now and then
let one through that the provider still counts. When a provider answers 429 all the same, the
wait it asks for is stored beside the log, so every worker slows down, not only the one that
got it.
"""

from __future__ import annotations

import asyncio
import collections
import random
import threading
import time
import uuid

__all__ = ["ImageRateLimiter", "RollingWindow"]

_KEY = "storyboard:image-creations"
# A slot is taken or the wait returned in one step, on Redis's own clock (workers' clocks
# may differ).
_TAKE = """
local key, window, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) < limit then
  redis.call('ZADD', key, now, ARGV[3])
  redis.call('PEXPIRE', key, math.ceil(window * 1000) + 1000)
  return '0'
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return tostring(tonumber(oldest[2]) + window - now)
"""


def _slack(window: float) -> float:
    """How much longer than the provider's window ours is: 1%, at least half a second (what a
    request may lag behind its slot on a busy worker, as measured in bench/)."""
    return max(0.5, window * 0.01)


class RollingWindow:
    """At most ``limit`` takes in any ``window`` seconds, per key: a sorted set per key in
    Redis (shared by every process; ``redis``), else a deque per key in this process.
    ``try_take(key)`` takes a slot (0) or says how long until one frees."""

    def __init__(self, *, limit: int, window: float, redis: object | None = None,
                 prefix: str) -> None:
        self.limit, self.window, self.prefix = limit, window, prefix
        self._redis = redis
        self._take = redis.register_script(_TAKE) if redis is not None else None  # type: ignore[attr-defined]
        self._logs: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()

    def try_take(self, key: str = "") -> float:
        if self._take is not None:
            return max(0.0, float(self._take(keys=[f"{self.prefix}{key}"], args=[
                self.window, self.limit, uuid.uuid4().hex])))
        with self._lock:
            log = self._logs.setdefault(key, collections.deque())
            now = time.monotonic()
            while log and log[0] <= now - self.window:
                log.popleft()
            if len(log) < self.limit:
                log.append(now)
                return 0.0
            return log[0] + self.window - now


class ImageRateLimiter:
    """``await acquire()`` before each image creation; ``await throttled(s)`` after a 429."""

    def __init__(self, *, limit: int, window: int, redis_url: str | None = None,
                 namespace: str = "storyboard") -> None:
        self.limit = limit
        self.window = window + _slack(window)
        self._pause_key = f"{namespace}:image-pause-until"
        if redis_url:
            import redis

            self._redis: redis.Redis | None = redis.Redis.from_url(redis_url)
        else:
            self._redis = None
        self._creations = RollingWindow(limit=limit, window=self.window, redis=self._redis,
                                        prefix=f"{namespace}:{_KEY}")
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
        return self._creations.try_take()

    async def acquire(self) -> None:
        while True:
            wait = await asyncio.to_thread(self._try_acquire)
            if wait <= 0:
                return
            self.waits += 1
            # Jitter, so a fleet that waited together does not retry together; a little, or a
            # slot freed now would be left unused.
            await asyncio.sleep(min(wait, 5.0) + random.uniform(0.0, 0.02))

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
