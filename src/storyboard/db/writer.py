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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, Update

from .jobs import update_statement
from .models import utcnow

__all__ = ["JobWriter"]


@dataclass
class _Write:
    job_id: int
    condition: tuple[tuple[str, ...], tuple[str, ...], str | None]  # only, unless, lease owner
    values: dict[str, Any]
    waiters: list[asyncio.Future[bool]] = field(default_factory=list)
    given: Update | None = None  # a ready-made statement (never merged)

    def statement(self) -> Update:
        if self.given is not None:
            return self.given
        only, unless, owner = self.condition
        return update_statement(self.job_id, only_status=only, unless_status=unless,
                                held_by=owner, values=self.values)


class JobWriter:
    """Batches conditional job updates from one event loop into shared transactions."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._queue: list[_Write] = []
        self._last: dict[int, _Write] = {}  # the newest queued write of each job
        self._flusher: asyncio.Task[None] | None = None
        # Its own thread: commits never queue behind other work sent to the default executor
        # (image files, parsing), and batches commit in order.
        self._thread: ThreadPoolExecutor | None = None
        self.transactions = 0  # commits made, for tests and benchmarks
        self.writes = 0  # writes asked for

    async def update(
        self,
        job_id: int,
        *,
        only_status: Iterable[str] = (),
        unless_status: Iterable[str] = (),
        held_by: str | None = None,
        touch: bool = True,
        **values: Any,
    ) -> bool:
        """Like ``update_job``: write ``values`` (and ``updated_at`` when ``touch``) if the
        condition holds at commit time; returns whether the row changed, after the commit."""
        if touch:
            values.setdefault("updated_at", utcnow())
        condition = (tuple(only_status), tuple(unless_status), held_by)
        last = self._last.get(job_id)
        if last is not None and last.given is None and last.condition == condition:
            last.values.update(values)
            return await self._wait(last)
        return await self._wait(self._enqueue(_Write(job_id, condition, values)))

    async def execute(self, job_id: int, statement: Update) -> bool:
        """Run a ready-made UPDATE of job ``job_id`` (a claim, a lease release) in the next
        batch, in order with the job's other writes; returns whether a row changed."""
        return await self._wait(self._enqueue(_Write(job_id, ((), (), None), {}, given=statement)))

    def _enqueue(self, write: _Write) -> _Write:
        self._queue.append(write)
        self._last[write.job_id] = write
        return write

    async def _wait(self, write: _Write) -> bool:
        self.writes += 1
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
                if self._thread is None:
                    self._thread = ThreadPoolExecutor(1, thread_name_prefix="job-writer")
                loop = asyncio.get_running_loop()
                results = await loop.run_in_executor(self._thread, self._commit, batch)
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

    def close(self) -> None:
        """Stop the writer's thread (after any batch in progress); a later write starts anew."""
        if self._thread is not None:
            self._thread.shutdown(wait=True)
            self._thread = None

    def _commit(self, batch: list[_Write]) -> list[bool]:
        if len(batch) == 1 and self._engine.dialect.name == "postgresql":
            # One statement is its own transaction: autocommit saves PostgreSQL the separate
            # BEGIN and COMMIT round trips (a quiet worker's writes mostly come one at a time).
            # Not for SQLite, where switching the mode costs PRAGMAs and a commit is local.
            autocommit = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            with autocommit as conn:
                results = [conn.execute(batch[0].statement()).rowcount > 0]
        else:
            with self._engine.begin() as conn:
                results = [conn.execute(write.statement()).rowcount > 0 for write in batch]
        self.transactions += 1
        return results
