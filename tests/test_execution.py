"""One suite of execution tests, run on both engines:

- ``embedded``: SQLite, ``storyboard worker`` polling the database (the default install);
- ``dramatiq``: PostgreSQL and RabbitMQ, ``storyboard worker`` consuming a Dramatiq queue.

Real worker processes, real SIGKILL and SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from storyboard import get_job, save_generated_video
from storyboard.config import Settings, get_settings

from .fake_replicate import FAKE_API_KEY, FakeReplicateProcess
from .jobstate import scene_files, scenes_done, status, wait
from .services import RABBITMQ, RABBITMQ_URL, REDIS, REDIS_URL, postgres_database, require

FINAL = ("storyboard_ready", "failed", "cancelled")


@dataclass
class Backend:
    name: str
    env: dict[str, str]
    settings: Settings
    submit: Callable[[int], None]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def spawn(self, **extra: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, **self.env, **extra}
        proc = subprocess.Popen([sys.executable, "-m", "storyboard", "worker", "--quiet"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    def new_job(self, duration: int = 30) -> int:
        job_id = save_generated_video("A robot exploring Mars", "", "v2",
                                      {"duration": duration, "style": "cinematic"}, "pending")
        self.submit(job_id)
        return job_id


@pytest.fixture(params=["embedded", "dramatiq"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    common = {"STORYBOARD_SKETCH_DELAY": "0.25", "STORYBOARD_SCENE_CONCURRENCY": "1",
              "STORYBOARD_WORKER_POLL_INTERVAL": "0.05", "STORYBOARD_LEASE_SECONDS": "2",
              "STORYBOARD_STATUS_POLL_INTERVAL": "0.1"}
    if request.param == "embedded":
        for k, v in common.items():
            monkeypatch.setenv(k, v)
        b = Backend("embedded", common, get_settings(), submit=lambda _job_id: None)
        yield b
        _stop_all(b)
        return
    require("RabbitMQ", RABBITMQ)
    with postgres_database() as url:
        env = {**common, "DATABASE_URL": url, "STORYBOARD_BROKER_URL": RABBITMQ_URL,
               "STORYBOARD_QUEUE_NAME": f"sb_test_{uuid.uuid4().hex[:8]}",
               "STORYBOARD_REDISPATCH_INTERVAL": "1", "STORYBOARD_REDISPATCH_AFTER": "5"}
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        settings = get_settings()
        from storyboard.jobs.queue import Queue

        queue = Queue(settings)
        b = Backend("dramatiq", env, settings, submit=queue.send)
        try:
            yield b
        finally:
            _stop_all(b)
            queue.broker.flush_all()
            queue.close()


def _stop_all(b: Backend) -> None:
    for proc in b.procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)










def test_workers_share_jobs_and_finish_them(backend: Backend) -> None:
    ids = [backend.new_job(15) for _ in range(6)]
    backend.spawn()
    backend.spawn()
    wait(lambda: all(status(i) in FINAL for i in ids))
    assert [status(i) for i in ids] == ["storyboard_ready"] * 6
    for job_id in ids:  # every scene made exactly once
        assert sorted(scene_files(backend.settings, job_id)) == [
            f"scene-0{n}-v1.png" for n in (1, 2, 3)]


def test_sigkill_mid_job_resumes_without_redoing_scenes(backend: Backend) -> None:
    job_id = backend.new_job(30)
    first = backend.spawn()
    wait(lambda: scenes_done(job_id) >= 2)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    assert status(job_id) not in FINAL  # interrupted mid-job
    before = scene_files(backend.settings, job_id)
    assert len(before) >= 2
    backend.spawn()
    wait(lambda: status(job_id) in FINAL)
    assert status(job_id) == "storyboard_ready"
    after = scene_files(backend.settings, job_id)
    assert sorted(after) == [f"scene-0{n}-v1.png" for n in range(1, 7)]
    for name, mtime in before.items():
        assert after[name] == mtime  # finished scenes were not generated again


def test_sigterm_lets_running_jobs_finish(backend: Backend) -> None:
    job_id = backend.new_job(15)
    proc = backend.spawn(STORYBOARD_SHUTDOWN_GRACE="30")
    wait(lambda: scenes_done(job_id) >= 1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(40) == 0
    assert status(job_id) == "storyboard_ready"


def test_sigterm_after_the_grace_hands_running_jobs_back(backend: Backend) -> None:
    """A job still running when the grace period ends is given back at once (its lease
    released, in queue mode its message sent again), not left to wait out its lease."""
    job_id = backend.new_job(50)
    proc = backend.spawn(STORYBOARD_SHUTDOWN_GRACE="0")
    wait(lambda: scenes_done(job_id) >= 1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(40) == 0
    job = get_job(job_id)
    assert job is not None and job["status"] == "generating_storyboard"
    assert job["lease_owner"] is None  # handed back: any worker may take it now
    before = scene_files(backend.settings, job_id)
    backend.spawn()
    wait(lambda: status(job_id) in FINAL)
    assert status(job_id) == "storyboard_ready"
    after = scene_files(backend.settings, job_id)
    assert len(after) == 10 and all(after[n] == m for n, m in before.items())


def test_many_workers_one_killed_mid_job(backend: Backend) -> None:
    ids = [backend.new_job(20) for _ in range(8)]
    workers = [backend.spawn() for _ in range(3)]
    wait(lambda: sum(scenes_done(i) for i in ids) >= 4)
    workers[0].send_signal(signal.SIGKILL)
    snapshot = {i: scene_files(backend.settings, i) for i in ids}
    wait(lambda: all(status(i) in FINAL for i in ids), timeout=90)
    assert [status(i) for i in ids] == ["storyboard_ready"] * 8
    for job_id in ids:
        files = scene_files(backend.settings, job_id)
        assert sorted(files) == [f"scene-0{n}-v1.png" for n in range(1, 5)]
        for name, mtime in snapshot[job_id].items():
            assert files[name] == mtime


@pytest.mark.parametrize("hold", ["60", "1"], ids=["held-create", "short-wait"])
def test_sigkill_mid_prediction_resumes_it(backend: Backend, hold: str) -> None:
    """A kill mid-image costs nothing twice. With a short ``Prefer: wait`` the prediction id is
    checkpointed before polling, and the next worker polls the same predictions; with the
    default wait (60 s) the create is still held when the worker dies, its id never arrived,
    and the next worker finds each prediction by the prompt and seed recorded before it."""
    with FakeReplicateProcess(latency=4.0) as fake:  # outlives the worker it serves
        replicate = {"STORYBOARD_IMAGE_PROVIDER": "replicate", "REPLICATE_API_KEY": FAKE_API_KEY,
                     "REPLICATE_BASE_URL": fake.base_url, "STORYBOARD_REPLICATE_WAIT": hold,
                     "STORYBOARD_SCENE_CONCURRENCY": "0"}
        job_id = backend.new_job(15)
        first = backend.spawn(**replicate)
        wait(lambda: len(fake_predictions(fake)) == 3)  # all three created, none finished
        if hold == "1":
            wait(lambda: len(prediction_ids(job_id)) == 3)
        made = fake_predictions(fake)
        assert {p["status"] for p in made.values()} <= {"starting", "processing"}
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert status(job_id) not in FINAL
        backend.spawn(**replicate)
        wait(lambda: status(job_id) in FINAL)
        job = get_job(job_id)
        assert job is not None and job["status"] == "storyboard_ready"
        assert fake_predictions(fake).keys() == made.keys()  # none created again
        assert set(prediction_ids(job_id).values()) == made.keys()
        assert job["actual_cost"] == pytest.approx(3 * 0.003)  # each image paid for once


def fake_predictions(fake: FakeReplicateProcess) -> dict[str, dict[str, Any]]:
    """Every prediction the fake has made, read over its (Replicate's) list endpoint."""
    response = httpx.get(f"{fake.base_url}/predictions",
                         headers={"Authorization": f"Bearer {FAKE_API_KEY}"})
    response.raise_for_status()
    return {p["id"]: p for p in response.json()["results"]}


def prediction_ids(job_id: int) -> dict[int, str]:
    job = get_job(job_id)
    entries = json.loads((job or {}).get("storyboard_data") or "[]")
    return {e["scene"]["scene_number"]: e["prediction_id"] for e in entries
            if e.get("prediction_id")}


@pytest.mark.parametrize("backend", ["dramatiq"], indirect=True)  # embedded: no messages
def test_lost_message_is_redispatched(backend: Backend) -> None:
    """A pending job whose message never reached the broker still runs."""
    job_id = save_generated_video("A cat", "", "v2", {"duration": 15}, "pending")  # no submit
    backend.spawn()
    wait(lambda: status(job_id) in FINAL)
    assert status(job_id) == "storyboard_ready"


def test_redis_broker_runs_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dramatiq's Redis broker works too (RabbitMQ stays the recommended one)."""
    require("Redis", REDIS)
    with postgres_database() as url:
        queue_name = f"sb_test_{uuid.uuid4().hex[:8]}"
        env = {"DATABASE_URL": url, "STORYBOARD_BROKER_URL": REDIS_URL,
               "STORYBOARD_QUEUE_NAME": queue_name, "STORYBOARD_LEASE_SECONDS": "2"}
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        from storyboard.jobs.queue import Queue

        queue = Queue(get_settings())
        b = Backend("redis", env, get_settings(), submit=queue.send)
        try:
            ids = [b.new_job(15) for _ in range(3)]
            b.spawn()
            wait(lambda: all(status(i) in FINAL for i in ids))
            assert [status(i) for i in ids] == ["storyboard_ready"] * 3
        finally:
            _stop_all(b)
            queue.broker.flush_all()
            queue.close()


def test_a_worker_prefetches_no_more_messages_than_it_can_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """RabbitMQ's 30-minute consumer timeout counts from delivery: a message prefetched behind
    running jobs would spend it waiting (Dramatiq prefetches two per thread by default)."""
    require("RabbitMQ", RABBITMQ)
    monkeypatch.setenv("STORYBOARD_BROKER_URL", RABBITMQ_URL)
    monkeypatch.setenv("STORYBOARD_QUEUE_NAME", f"sb_test_{uuid.uuid4().hex[:8]}")
    from storyboard.jobs.queue import Queue

    queue = Queue(get_settings())
    try:
        assert queue.worker(3).queue_prefetch == 3
    finally:
        queue.close()


def test_an_expected_retry_is_one_line_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    """A message for a job another worker holds is retried later: one INFO line says so, and
    nothing is logged as an error (no traceback to trip an alert)."""
    import logging
    from datetime import timedelta

    from storyboard.db import get_engine, update_job
    from storyboard.db.models import utcnow

    require("RabbitMQ", RABBITMQ)
    with postgres_database() as url:
        for k, v in {"DATABASE_URL": url, "STORYBOARD_BROKER_URL": RABBITMQ_URL,
                     "STORYBOARD_QUEUE_NAME": f"sb_test_{uuid.uuid4().hex[:8]}",
                     "STORYBOARD_LEASE_SECONDS": "1"}.items():
            monkeypatch.setenv(k, v)
        from storyboard.jobs.queue import Queue

        settings = get_settings()
        job_id = save_generated_video("A robot exploring Mars", "", "v2", {"duration": 15},
                                      "pending")
        # Another (live) worker holds it for a while.
        update_job(get_engine(settings), job_id, lease_owner="elsewhere:1:x:",
                   lease_expires_at=utcnow() + timedelta(seconds=2))
        queue = Queue(settings)
        consumer = queue.worker(1)
        caplog.set_level(logging.DEBUG)
        try:
            consumer.start()
            queue.send(job_id)
            wait(lambda: status(job_id) == "storyboard_ready", timeout=90)
        finally:
            consumer.stop()
            queue.broker.flush_all()
            queue.close()
    busy = [r for r in caplog.records if "busy" in r.getMessage()]
    assert busy and all(r.levelno == logging.INFO and r.exc_info is None for r in busy)
    assert all("Job" in r.getMessage() for r in busy)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert errors == [], [r.getMessage() for r in errors]
