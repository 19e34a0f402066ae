"""Scale-out on Dramatiq: jobs travel as messages, any number of workers on any machines.

Delivery is at least once and the task is idempotent: a message for a job that is finished is
acknowledged and dropped; one for a job another live worker holds is retried after the lease
could have lapsed (a RabbitMQ redelivery racing a dead worker's lease lands here); any other run
resumes from the checkpoints in the row. Jobs whose message was lost between the database commit
and the broker are found by ``redispatch_lost_jobs`` and sent again.

Dramatiq's defaults are set on purpose: ``max_retries`` (default 20) counts only busy retries,
``time_limit`` (default 10 min) is ``STORYBOARD_JOB_TIME_LIMIT`` (25 min, under RabbitMQ's 30 min
consumer timeout), and the backoff starts at the lease length.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import timedelta
from typing import Any

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware.asyncio import AsyncIO
from sqlalchemy import select, update

from ..config import Settings
from ..db import RUNNABLE_STATUSES, get_engine
from ..db.models import GeneratedVideo, utcnow
from ..errors import ConfigurationError
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
        lease_ms = int(settings.lease_seconds * 1000)
        self.actor: Any = dramatiq.actor(
            self._run,
            actor_name=ACTOR_NAME,
            queue_name=settings.queue_name,
            broker=self.broker,
            max_retries=settings.queue_max_retries,
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
        await run_storyboard_job(job_id, self._runtime, raise_if_busy=True)

    def send(self, job_id: int) -> None:
        """Dispatch a job and note when, so a lost message can be told from a queued one."""
        self.actor.send(job_id)
        engine = get_engine(self.settings)
        with engine.begin() as conn:
            conn.execute(update(GeneratedVideo).where(GeneratedVideo.id == job_id)
                         .values(dispatched_at=utcnow()))

    def worker(self, threads: int) -> dramatiq.Worker:
        return dramatiq.Worker(self.broker, queues={self.settings.queue_name},
                               worker_threads=threads)

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
