"""Scale-out on Dramatiq: jobs travel as messages, any number of workers on any machines.

Delivery is at least once and the task is idempotent: a message for a job that is finished is
acknowledged and dropped; one for a job another live worker holds is retried after the lease
could have lapsed (a RabbitMQ redelivery racing a dead worker's lease lands here); any other run
resumes from the checkpoints in the row. Jobs whose message was lost between the database commit
and the broker are found by ``redispatch_lost_jobs`` and sent again.

Dramatiq's defaults are set on purpose: a message is retried (``STORYBOARD_QUEUE_MAX_RETRIES``
times, not Dramatiq's 20) only when another worker holds its job or the database could not be
read, with a backoff that starts at the lease length; ``time_limit`` (default 10 min) is
``STORYBOARD_JOB_TIME_LIMIT`` (25 min, under RabbitMQ's 30 min consumer timeout, which counts
from delivery: a worker prefetches only as many messages as it has threads, so none waits in
memory behind running jobs). On SIGTERM, jobs still running after the grace period are handed
back: their lease is released and their message sent again, so another worker resumes them at
once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from datetime import timedelta
from typing import Any

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware.asyncio import AsyncIO
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from ..config import Settings
from ..db import RUNNABLE_STATUSES, get_engine
from ..db.models import GeneratedVideo, utcnow
from ..errors import ConfigurationError, JobBusyError
from .runtime import JobRuntime
from .task import run_storyboard_job

__all__ = ["Queue", "redispatch_lost_jobs"]

log = logging.getLogger("storyboard.queue")
ACTOR_NAME = "run_storyboard_job"


def _make_broker(url: str) -> dramatiq.Broker:
    if url.startswith(("amqp://", "amqps://")):
        # Confirmed delivery: send() returns only once RabbitMQ has the message.
        return RabbitmqBroker(url=url, confirm_delivery=True)
    if url.startswith(("redis://", "rediss://")):
        return RedisBroker(url=url)
    raise ConfigurationError(
        f"STORYBOARD_BROKER_URL must start with amqp:// (RabbitMQ) or redis://, got {url[:12]!r}"
    )


class Queue:
    """The broker, the job actor, and (in a worker process) the shared job runtime."""

    def __init__(self, settings: Settings) -> None:
        if not settings.broker_url:
            raise ConfigurationError("set STORYBOARD_BROKER_URL to use the queue")
        self.settings = settings
        self.broker = _make_broker(settings.broker_url)
        self.broker.add_middleware(AsyncIO())
        dramatiq.set_broker(self.broker)
        self._runtime: JobRuntime | None = None
        self._runtime_lock = asyncio.Lock()
        # The job runs of this process, on Dramatiq's event loop, for a SIGTERM hand-back.
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handing_back = threading.Event()
        self._handed_back: list[int] = []
        max_retries = settings.queue_max_retries

        def retry_when(retries: int, exc: Exception) -> bool:
            # Busy (a redelivery racing a live lease) or a database hiccup: try again later.
            # Anything else the job itself has already handled or recorded.
            return retries < max_retries and isinstance(exc, dramatiq.Retry | SQLAlchemyError)

        # An expected retry is told in one line of ours (``_run``); Dramatiq's own "Retrying
        # message" line would say it twice.
        logging.getLogger("dramatiq.middleware.retries.Retries").setLevel(logging.WARNING)

        lease_ms = int(settings.lease_seconds * 1000)
        self.actor: Any = dramatiq.actor(
            self._run,
            actor_name=ACTOR_NAME,
            queue_name=settings.queue_name,
            broker=self.broker,
            retry_when=retry_when,
            min_backoff=lease_ms,
            max_backoff=lease_ms * 4,
            time_limit=int(settings.job_time_limit * 1000),
        )

    async def _run(self, job_id: int) -> None:
        # One runtime per worker process, on Dramatiq's shared event loop: every job's image
        # requests share one connection pool, one in-flight cap and one rate limiter.
        async with self._runtime_lock:
            if self._runtime is None:
                rt = JobRuntime.create(self.settings)
                rt.image_slots = asyncio.Semaphore(self.settings.max_inflight_images)
                self._runtime = rt
        task = asyncio.current_task()
        assert task is not None
        self._loop = asyncio.get_running_loop()
        self._tasks.add(task)
        try:
            await run_storyboard_job(job_id, self._runtime, raise_if_busy=True)
        except JobBusyError as exc:
            # Expected (a redelivery racing a live lease): one line, no traceback. Raised as
            # Dramatiq's Retry, which its worker does not log as an error.
            log.info("Job %s: busy (%s); the queue will try again later", job_id, exc)
            raise dramatiq.Retry(str(exc)) from None
        except asyncio.CancelledError:
            if not self._handing_back.is_set():
                raise
            # Shutting down: the run gave its lease back as it stopped; this message is done,
            # and the job is sent again once this worker takes no more (``send_handed_back``).
            self._handed_back.append(job_id)
            log.info("Job %s: handed back", job_id)
        finally:
            self._tasks.discard(task)

    def hand_back(self, grace: float) -> None:
        """On shutdown (from any thread): give running jobs ``grace`` seconds to finish, then
        stop the rest and send them again. Returns once none is running."""
        deadline = time.monotonic() + grace
        while self._tasks and time.monotonic() < deadline:
            time.sleep(0.05)
        if not self._tasks or self._loop is None:
            return
        self._handing_back.set()
        for task in list(self._tasks):
            self._loop.call_soon_threadsafe(task.cancel)
        deadline = time.monotonic() + 30
        while self._tasks and time.monotonic() < deadline:
            time.sleep(0.05)

    def send_handed_back(self) -> None:
        """After the consumer has stopped: send the handed-back jobs again, for other workers
        to resume now (sent earlier, this stopping worker could take them itself)."""
        for job_id in self._handed_back:
            self.send(job_id)
        self._handed_back.clear()

    def send(self, job_id: int) -> None:
        """Dispatch a job and note when, so a lost message can be told from a queued one."""
        self.actor.send(job_id)
        engine = get_engine(self.settings)
        with engine.begin() as conn:
            conn.execute(update(GeneratedVideo).where(GeneratedVideo.id == job_id)
                         .values(dispatched_at=utcnow()))

    def worker(self, threads: int) -> dramatiq.Worker:
        worker = dramatiq.Worker(self.broker, queues={self.settings.queue_name},
                                 worker_threads=threads)
        # RabbitMQ's consumer timeout counts from delivery: a message prefetched behind running
        # jobs (Dramatiq's default is two per thread) would spend its budget waiting.
        worker.queue_prefetch = threads
        return worker

    def close(self) -> None:
        self.broker.close()


def redispatch_lost_jobs(queue: Queue) -> list[int]:
    """Send again every job that should be moving but has no live message or worker:
    pending and never dispatched (or long ago), or runnable with a lapsed lease."""
    s = queue.settings
    now = utcnow()
    stale = now - timedelta(seconds=s.redispatch_after)
    job = GeneratedVideo
    lost = select(job.id).where(
        job.status.in_(RUNNABLE_STATUSES),
        (job.lease_owner.is_(None) & (job.dispatched_at.is_(None) | (job.dispatched_at < stale)))
        | (job.lease_owner.is_not(None) & (job.lease_expires_at < now)
           & (job.dispatched_at.is_(None) | (job.dispatched_at < now - timedelta(
               seconds=s.lease_seconds)))),
    ).order_by(job.id).limit(1000)
    with get_engine(s).connect() as conn:
        ids = [int(i) for i in conn.execute(lost).scalars()]
    for job_id in ids:
        queue.send(job_id)
    if ids:
        log.warning("re-dispatched %d jobs with no live message: %s", len(ids), ids[:20])
    return ids


class Redispatcher:
    """Runs ``redispatch_lost_jobs`` every ``redispatch_interval`` in a daemon thread."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="redispatcher", daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.queue.settings.redispatch_interval):
            try:
                redispatch_lost_jobs(self.queue)
            except Exception:  # a broker or database hiccup must not kill the loop
                log.exception("re-dispatch pass failed; will try again")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
