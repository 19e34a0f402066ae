"""The embedded worker: picks runnable jobs out of the database and runs them on one event loop.

Used by ``storyboard worker`` and, in a background thread, by ``storyboard serve``. Jobs are
claimed with a lease (see ``db.claim_job``), so any number of workers can share one database;
a job whose worker died is resumed when its lease lapses, or at once when the dead worker was a
process on this same machine.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading

from sqlalchemy.exc import SQLAlchemyError

from .. import eventloop
from ..config import Settings
from ..db import claim_job, claimable_job_ids, leased_jobs
from ..images import ImageProvider
from ..webhooks import WebhookDeliverer
from .runtime import JobRuntime, pid_namespace
from .task import run_storyboard_job

__all__ = ["Worker", "WorkerThread", "owner_is_dead"]

log = logging.getLogger("storyboard.worker")
_MAX_BACKOFF = 30.0  # seconds between polls while the database cannot be read


def owner_is_dead(owner: str) -> bool:
    """True when a lease holder was a process on this machine that no longer exists. Only a
    holder in this process-id namespace can be judged (a container with the host's name has
    its own pids); any other holder's lease is left to lapse."""
    parts = owner.split(":")
    if len(parts) < 4 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    if not parts[3] or parts[3] != pid_namespace():
        return False
    pid_text = parts[1]
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


class Worker:
    """Runs up to ``settings.worker_max_jobs`` jobs at once on the current event loop."""

    def __init__(self, settings: Settings, provider: ImageProvider | None = None) -> None:
        self.rt = JobRuntime.create(settings, provider)
        self.rt.image_slots = asyncio.Semaphore(settings.max_inflight_images)
        self.settings = settings
        self.running: dict[int, asyncio.Task[str | None]] = {}
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.finished = 0

    def wake(self) -> None:
        """Look for work now (thread-safe): called when a job was just created."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._wake.set)

    def check_now(self, job_id: int) -> None:
        """A job's row just changed under it (cancelled): let it notice now (thread-safe)."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.rt.nudge, job_id)

    def stop(self) -> None:
        """Stop taking work (thread-safe); running jobs get ``shutdown_grace`` to finish."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._stopping.set)

    def _candidates(self, room: int) -> list[tuple[int, str | None]]:
        found: list[tuple[int, str | None]] = [
            (i, None) for i in claimable_job_ids(self.rt.engine, limit=room)]
        for job_id, owner in leased_jobs(self.rt.engine):
            if len(found) >= room:
                break
            if job_id not in self.running and owner != self.rt.owner and owner_is_dead(owner):
                log.warning("job %s: its worker %s is gone; resuming it", job_id, owner)
                found.append((job_id, owner))
        return found

    def _start(self, job_id: int, steal_from: str | None) -> None:
        if steal_from and not claim_job(self.rt.engine, job_id, owner=self.rt.owner,
                                        lease_seconds=self.settings.lease_seconds,
                                        steal_from=steal_from):
            return
        task = asyncio.create_task(run_storyboard_job(job_id, self.rt), name=f"job-{job_id}")
        self.running[job_id] = task

        def done(t: asyncio.Task[str | None]) -> None:
            self.running.pop(job_id, None)
            self.finished += 1
            self._wake.set()  # a slot is free

        task.add_done_callback(done)

    def _take_work(self) -> None:
        room = self.settings.worker_max_jobs - len(self.running)
        if room > 0:
            for job_id, steal_from in self._candidates(room):
                if job_id not in self.running:
                    self._start(job_id, steal_from)

    async def run(self) -> None:
        """Poll for work until ``stop()``, then drain or hand back running jobs."""
        self.loop = asyncio.get_running_loop()
        log.info("worker %s started", self.rt.owner)
        failures = 0
        # Every worker also empties the webhook outbox (they share it through claims).
        hooks_stop = asyncio.Event()
        hooks = asyncio.create_task(WebhookDeliverer(self.rt.engine, self.settings)
                                    .run(hooks_stop), name="webhooks")
        try:
            while not self._stopping.is_set():
                pause = self.settings.worker_poll_interval
                try:
                    self._take_work()
                    failures = 0
                except SQLAlchemyError as exc:
                    # The database restarted or failed over: its pooled connections are
                    # gone. Keep polling (backing off), or jobs would wait for a worker
                    # that no longer looks.
                    failures = min(failures + 1, 10)  # the exponent stays small however long
                    pause = min(pause * 2 ** failures, _MAX_BACKOFF)
                    log.warning("worker: cannot read jobs (%s); trying again in %.1fs",
                                str(exc).strip().splitlines()[0] if str(exc).strip() else
                                type(exc).__name__, pause)
                self._wake.clear()
                waits = [asyncio.ensure_future(self._stopping.wait())]
                if not failures:  # a new job wakes the worker, unless it is backing off
                    waits.append(asyncio.ensure_future(self._wake.wait()))
                await asyncio.wait(waits, timeout=pause, return_when=asyncio.FIRST_COMPLETED)
                for w in waits:
                    w.cancel()
            await self._drain()
        finally:
            # After the drain: the jobs' last events are in the outbox; a delivery under way
            # gets its timeout, then its claim lapses and another worker sends it.
            hooks_stop.set()
            try:
                await asyncio.wait_for(hooks, self.settings.webhook_timeout + 5)
            except (TimeoutError, asyncio.CancelledError):
                pass
            await self.rt.aclose()
            log.info("worker %s stopped", self.rt.owner)

    async def _drain(self) -> None:
        if not self.running:
            return
        log.info("worker stopping: waiting up to %.0fs for %d jobs", self.settings.shutdown_grace,
                 len(self.running))
        tasks = list(self.running.values())
        _, pending = await asyncio.wait(tasks, timeout=self.settings.shutdown_grace)
        for task in pending:
            task.cancel()  # its lease is released, so another worker resumes it
        if pending:
            await asyncio.wait(pending)
            log.info("worker handed back %d unfinished jobs", len(pending))


class WorkerThread:
    """A Worker on its own event loop in a daemon thread (for ``storyboard serve``)."""

    def __init__(self, settings: Settings, provider: ImageProvider | None = None) -> None:
        self.settings = settings
        self.provider = provider
        self.worker: Worker | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="storyboard-worker", daemon=True)

    def _main(self) -> None:
        async def main() -> None:
            self.worker = Worker(self.settings, self.provider)
            self.worker.loop = asyncio.get_running_loop()
            self._ready.set()
            await self.worker.run()

        eventloop.run(main())

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def wake(self) -> None:
        if self.worker:
            self.worker.wake()

    def check_now(self, job_id: int) -> None:
        if self.worker:
            self.worker.check_now(job_id)

    def stop(self, timeout: float | None = None) -> None:
        if self.worker:
            self.worker.stop()
        self._thread.join(timeout)
