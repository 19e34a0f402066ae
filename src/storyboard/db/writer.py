"""Group commit for job-row updates: many jobs' writes, one transaction, off the event loop.

A worker with hundreds of jobs in flight writes each job's progress after every scene and each
prediction id before waiting on it. One transaction per write would block the event loop on a
commit (an fsync) a thousand times a minute. ``JobWriter.update`` instead queues the write; one
flusher commits everything queued so far in a single transaction in a thread, then wakes every
waiter with its own outcome. Durability is unchanged: ``update`` returns only after the commit.

Consecutive writes to the same job under the same condition are merged (later values win): each
is a full snapshot of the columns it sets, so the merged write leaves the row exactly as the last
one would (never merged into: a write that changes the status or lease owner, which conditions
test). A job's writes are never reordered. If a batch's transaction fails, its writes are retried
one by one, so a bad write fails only its own caller.

A write may carry ledger statements (``db/ledger.py``): they run first, in the same
transaction, whatever the job update's condition says (a prediction made is billed even if the
run that made it has lost its job), so the job's cost columns, set from the ledger in the same
statement, always match it. It may also carry hooks run after the update, in the same
transaction, only if the row changed: a webhook's outbox message is written with the state it
tells of, or not at all.

``call`` runs a function on the batch's connection and hands back what it returns (the image
cache's claim): in a process whose writes all go through here, no two of its transactions ever
wait on each other's locks (SQLite has one writer at a time, and a writer kept waiting sleeps
in steps of milliseconds).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, Executable, Update

from .jobs import update_statement
from .models import utcnow

__all__ = ["JobWriter"]

# Columns that write conditions test: a write that changes one is never merged into.
_CONDITIONED = frozenset({"status", "lease_owner"})


@dataclass
class _Write:
    job_id: int
    condition: tuple[tuple[str, ...], tuple[str, ...], str | None]  # only, unless, lease owner
    values: dict[str, Any]
    waiters: list[asyncio.Future[Any]] = field(default_factory=list)
    given: Update | None = None  # a ready-made statement (never merged)
    call: Callable[[Connection], Any] | None = None  # a function of the connection (never merged)
    ledger: list[Executable] = field(default_factory=list)  # run first, unconditionally
    after: list[Callable[[Connection], object]] = field(default_factory=list)  # if it changed

    def settle(self, outcome: Any) -> None:
        """Hand the commit's outcome (changed or not, or the error) to every caller."""
        for waiter in self.waiters:
            if not waiter.done():
                if isinstance(outcome, BaseException):
                    waiter.set_exception(outcome)
                else:
                    waiter.set_result(outcome)

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
        ledger: Sequence[Executable] = (),
        after: Sequence[Callable[[Connection], object]] = (),
        **values: Any,
    ) -> bool:
        """Like ``update_job``: write ``values`` (and ``updated_at`` when ``touch``) if the
        condition holds at commit time; returns whether the row changed, after the commit.
        ``ledger`` statements run first in the same transaction, unconditionally; ``after``
        hooks run last, in it, on its connection, when the row changed."""
        if touch:
            values.setdefault("updated_at", utcnow())
        condition = (tuple(only_status), tuple(unless_status), held_by)
        last = self._last.get(job_id)
        if (last is not None and last.given is None and last.call is None
                and last.condition == condition and not _CONDITIONED & last.values.keys()):
            # Merging is exact only when the earlier write leaves the condition's columns as
            # they were: then the later write's condition sees what it would have seen.
            last.values.update(values)
            last.ledger.extend(ledger)
            last.after.extend(after)
            return await self._wait(last)
        return await self._wait(self._enqueue(_Write(job_id, condition, values,
                                                     ledger=list(ledger), after=list(after))))

    async def execute(self, job_id: int, statement: Update) -> bool:
        """Run a ready-made UPDATE of job ``job_id`` (a claim, a lease release) in the next
        batch, in order with the job's other writes; returns whether a row changed."""
        return await self._wait(self._enqueue(_Write(job_id, ((), (), None), {}, given=statement)))

    async def call(self, job_id: int, function: Callable[[Connection], Any]) -> Any:
        """Run ``function(connection)`` in the next batch's transaction, in order with job
        ``job_id``'s other writes; returns what it returns, after the commit (or raises what
        it raised)."""
        return await self._wait(self._enqueue(_Write(job_id, ((), (), None), {}, call=function)))

    def _enqueue(self, write: _Write) -> _Write:
        self._queue.append(write)
        self._last[write.job_id] = write
        return write

    async def _wait(self, write: _Write) -> Any:
        self.writes += 1
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        write.waiters.append(waiter)
        flusher = self._flusher
        if flusher is None or flusher.done() or flusher.get_loop() is not waiter.get_loop():
            self._flusher = asyncio.create_task(self._flush())
        # Shielded: a caller cancelled mid-commit must not cancel the commit for everyone else.
        return await asyncio.shield(waiter)

    async def _flush(self) -> None:
        try:
            while self._queue:
                # Let every coroutine that is ready queue its write first: that is the batch.
                await asyncio.sleep(0)
                batch, self._queue, self._last = self._queue, [], {}
                await self._run(batch)
        finally:
            if self._queue:
                # Cancelled (a loop shutting down) with writes still queued behind the batch:
                # a new flusher takes them, or their callers (a lease release) would wait
                # forever.
                self._flusher = asyncio.get_running_loop().create_task(self._flush())

    async def _run(self, batch: list[_Write]) -> None:
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="job-writer")
        loop = asyncio.get_running_loop()
        try:
            outcomes = await loop.run_in_executor(self._thread, self._commit, batch)
        except BaseException:  # cancelled while the thread commits: the outcome is unknown
            for write in batch:
                write.settle(RuntimeError("job write interrupted"))
            raise
        for write, outcome in zip(batch, outcomes, strict=True):
            write.settle(outcome)

    def close(self) -> None:
        """Stop the writer's thread (after any batch in progress); a later write starts anew."""
        if self._thread is not None:
            self._thread.shutdown(wait=True)
            self._thread = None

    def _commit(self, batch: list[_Write]) -> list[Any]:
        """Commit the batch in one transaction; if that fails, each write on its own, so one
        bad write (or a stale connection) fails only its own caller, not every job in the
        batch."""
        try:
            results: list[Any] = list(self._transaction(batch))
        except Exception:  # noqa: BLE001 - retried one by one below, where errors are kept
            results = []
            for write in batch:
                try:
                    results.extend(self._transaction([write]))
                except Exception as exc:  # noqa: BLE001 - handed to that write's caller
                    results.append(exc)
        return results

    def _transaction(self, batch: list[_Write]) -> list[Any]:
        if (len(batch) == 1 and not batch[0].ledger and not batch[0].after
                and batch[0].call is None and self._engine.dialect.name == "postgresql"):
            # One statement is its own transaction: autocommit saves PostgreSQL the separate
            # BEGIN and COMMIT round trips (a quiet worker's writes mostly come one at a time).
            # Not for SQLite, where switching the mode costs PRAGMAs and a commit is local.
            autocommit = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            with autocommit as conn:
                results = [conn.execute(batch[0].statement()).rowcount > 0]
        else:
            with self._engine.begin() as conn:
                results = []
                for write in batch:
                    if write.call is not None:
                        results.append(write.call(conn))
                        continue
                    for statement in write.ledger:
                        conn.execute(statement)
                    changed = conn.execute(write.statement()).rowcount > 0
                    if changed:
                        for hook in write.after:
                            hook(conn)
                    results.append(changed)
        self.transactions += 1
        if any(write.after for write in batch):
            from ..webhooks import wake_deliverers  # the webhooks read the job models: no cycle

            wake_deliverers()  # a message was (perhaps) written: no need to wait for a poll
        return results
