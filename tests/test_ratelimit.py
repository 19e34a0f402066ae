"""The image rate limit: a window count per fleet, and a 429 that pauses every worker."""

from __future__ import annotations

import asyncio
import uuid

from storyboard.jobs.ratelimit import ImageRateLimiter

from .services import REDIS, REDIS_URL, require


def test_local_window_makes_extra_creations_wait() -> None:
    limiter = ImageRateLimiter(limit=5, window=1)

    async def main() -> None:
        await asyncio.gather(*(limiter.acquire() for _ in range(8)))

    asyncio.run(main())
    assert limiter.waits >= 3  # the three over the limit had to wait for the next window


def test_local_pause_after_429() -> None:
    limiter = ImageRateLimiter(limit=100, window=60)
    asyncio.run(limiter.throttled(30))
    assert limiter._try_acquire() > 25  # everyone on this process waits


def _pair(limit: int) -> tuple[ImageRateLimiter, ImageRateLimiter]:
    require("Redis", REDIS)
    namespace = f"sb_test_{uuid.uuid4().hex[:8]}"
    return (ImageRateLimiter(limit=limit, window=60, redis_url=REDIS_URL, namespace=namespace),
            ImageRateLimiter(limit=limit, window=60, redis_url=REDIS_URL, namespace=namespace))


def test_redis_window_is_shared_by_workers() -> None:
    a, b = _pair(limit=4)
    try:
        assert [a._try_acquire() for _ in range(4)] == [0.0] * 4
        assert b._try_acquire() > 0  # worker B sees what worker A used
    finally:
        a.close()
        b.close()


def test_redis_429_pauses_every_worker() -> None:
    a, b = _pair(limit=100)
    try:
        assert b._try_acquire() == 0.0
        asyncio.run(a.throttled(20))
        assert b._try_acquire() > 15
        asyncio.run(b.throttled(5))  # a shorter pause never shortens a longer one
        assert a._try_acquire() > 15
    finally:
        a.close()
        b.close()


def test_the_window_rolls_a_slot_frees_when_the_oldest_leaves() -> None:
    """Any window of the provider's length holds at most the limit (not per clock window): the
    sixth creation of five a second waits until the first is a (slightly padded) second old."""
    import time

    limiter = ImageRateLimiter(limit=5, window=1)
    assert [limiter._try_acquire() for _ in range(5)] == [0.0] * 5
    wait = limiter._try_acquire()
    assert 1.0 <= wait <= 1.5  # one second, and the slack for requests that lag their slot
    time.sleep(wait)
    assert limiter._try_acquire() == 0.0


def test_redis_window_rolls_too() -> None:
    a, b = _pair(limit=3)
    try:
        assert [a._try_acquire(), b._try_acquire(), a._try_acquire()] == [0.0] * 3
        assert 60.0 <= b._try_acquire() <= 61.0  # the oldest leaves the 60 s window first
    finally:
        a.close()
        b.close()
