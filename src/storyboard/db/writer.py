"""Group commit for job-row updates: many jobs' writes, one transaction, off the event loop.

A worker with hundreds of jobs in flight writes each job's progress after every scene and each
prediction id before waiting on it. One transaction per write would block the event loop on a
commit (an fsync) a thousand times a minute. ``JobWriter.update`` instead queues the write; one
flusher commits everything queued so far in a single transaction in a thread, then wakes every
waiter with its own outcome. Durability is unchanged: ``update`` returns only after the commit.

Consecutive writes to the same job under the same condition are merged (later values win): each
is a full snapshot of the columns it sets, so the merged write leaves the row exactly as the last
one would. A job's writes are never reordered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from .jobs import update_statement
from .models import utcnow

__all__ = ["JobWriter"]


@dataclass
class _Write:
    job_id: int
    condition: tuple[tuple[str, ...], tuple[str, ...], str | None]  # only, unless, lease owner
    values: dict[str, Any]
    waiters: list[asyncio.Future[bool]] = field(default_factory=list)

    def statement(self) -> Any:
        only, unless, owner = self.condition
        return update_statement(self.job_id, only_status=only, unless_status=unless,
                                lease_owner=owner, values=self.values)


class JobWriter:
    """Batches conditional job updates from one event loop into shared transactions."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._queue: list[_Write] = []
        self._last: dict[int, _Write] = {}  # the newest queued write of each job
        self._flusher: asyncio.Task[None] | None = None
        self.transactions = 0  # commits made, for tests and benchmarks
        self.writes = 0  # writes asked for

    async def update(
        self,
        job_id: int,
        *,
        only_status: Iterable[str] = (),
        unless_status: Iterable[str] = (),
        lease_owner: str | None = None,
        touch: bool = True,
        **values: Any,
    ) -> bool:
        """Like ``update_job``: write ``values`` (and ``updated_at`` when ``touch``) if the
        condition holds at commit time; returns whether the row changed, after the commit."""
        if touch:
            values.setdefault("updated_at", utcnow())
        condition = (tuple(only_status), tuple(unless_status), lease_owner)
        self.writes += 1
        last = self._last.get(job_id)
        if last is not None and last.condition == condition:
            last.values.update(values)
            write = last
        else:
            write = _Write(job_id, condition, values)
            self._queue.append(write)
            self._last[job_id] = write
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        write.waiters.append(waiter)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        # Shielded: a caller cancelled mid-commit must not cancel the commit for everyone else.
        return await asyncio.shield(waiter)

    async def _flush(self) -> None:
        while self._queue:
            # Let every coroutine that is ready queue its write first: that is the batch.
            await asyncio.sleep(0)
            batch, self._queue, self._last = self._queue, [], {}
            try:
                results = await asyncio.to_thread(self._commit, batch)
            except BaseException as exc:  # the batch failed as a whole: tell every waiter
                for write in batch:
                    for waiter in write.waiters:
                        if not waiter.done():
                            waiter.set_exception(exc if isinstance(exc, Exception)
                                                 else RuntimeError("job write interrupted"))
                if not isinstance(exc, Exception):
                    raise
                continue
            for write, changed in zip(batch, results, strict=True):
                for waiter in write.waiters:
                    if not waiter.done():
                        waiter.set_result(changed)

    def _commit(self, batch: list[_Write]) -> list[bool]:
        with self._engine.begin() as conn:
            results = [conn.execute(write.statement()).rowcount > 0 for write in batch]
        self.transactions += 1
        return results
