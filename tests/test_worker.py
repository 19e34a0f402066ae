"""The embedded worker's own behaviour (the shared execution suite is test_execution.py)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from storyboard import get_job, save_generated_video
from storyboard.config import Settings, get_settings
from storyboard.db import get_engine, update_job
from storyboard.db.models import utcnow
from storyboard.jobs.runtime import pid_namespace
from storyboard.jobs.worker import Worker, owner_is_dead

from .jobstate import scenes_done, status, wait
from .providers import ScriptedProvider
from .services import postgres_database

FINAL = ("storyboard_ready", "failed", "cancelled")


def new_job(duration: int = 30) -> int:
    return save_generated_video("A robot exploring Mars", "", "v2",
                                {"duration": duration, "style": "cinematic"}, "pending")


def spawn_worker(**env: str) -> subprocess.Popen[bytes]:
    full = {**os.environ, "STORYBOARD_SKETCH_DELAY": "0.25", "STORYBOARD_SCENE_CONCURRENCY": "1",
            "STORYBOARD_WORKER_POLL_INTERVAL": "0.05", **env}
    return subprocess.Popen([sys.executable, "-m", "storyboard", "worker"], env=full,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)










def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)
    if proc.stderr:
        proc.stderr.close()


def test_worker_runs_pending_jobs(settings: Settings) -> None:
    ids = [new_job(15) for _ in range(5)]
    provider = ScriptedProvider()

    async def main() -> None:
        worker = Worker(settings.model_copy(update={"worker_poll_interval": 0.02}), provider)
        runner = asyncio.create_task(worker.run())
        while worker.finished < len(ids):
            await asyncio.sleep(0.02)
        worker.stop()
        await runner

    asyncio.run(asyncio.wait_for(main(), 30))
    assert [status(i) for i in ids] == ["storyboard_ready"] * 5
    assert len(provider.calls) == 15  # each scene once: no job ran twice


def test_sigterm_hands_back_unfinished_work(settings: Settings) -> None:
    job_id = new_job(50)
    proc = spawn_worker(STORYBOARD_SHUTDOWN_GRACE="0")
    try:
        wait(lambda: scenes_done(job_id) >= 1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        stop(proc)
    job = get_job(job_id)
    assert job is not None and job["status"] == "generating_storyboard"
    assert job["lease_owner"] is None  # handed back: any worker may take it now
    done = scenes_done(job_id)
    second = spawn_worker(STORYBOARD_SKETCH_DELAY="0")
    try:
        wait(lambda: status(job_id) in FINAL)
    finally:
        stop(second)
    assert status(job_id) == "storyboard_ready" and done < 10


def test_lapsed_lease_of_another_machine_is_resumed(settings: Settings) -> None:
    engine = get_engine(settings)
    lapsed, live = new_job(15), new_job(15)
    update_job(engine, lapsed, status="generating_storyboard", lease_owner="elsewhere:1:a",
               lease_expires_at=utcnow() - timedelta(seconds=1))
    update_job(engine, live, status="generating_storyboard", lease_owner="elsewhere:2:b",
               lease_expires_at=utcnow() + timedelta(minutes=5))

    async def main() -> None:
        worker = Worker(settings.model_copy(update={"worker_poll_interval": 0.02}),
                        ScriptedProvider())
        runner = asyncio.create_task(worker.run())
        while worker.finished < 1:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        worker.stop()
        await runner

    asyncio.run(asyncio.wait_for(main(), 30))
    assert status(lapsed) == "storyboard_ready"
    assert status(live) == "generating_storyboard"  # someone alive holds it


def test_owner_is_dead() -> None:
    import socket

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    host, ns = socket.gethostname(), pid_namespace()
    assert ns  # Linux: /proc/self/ns/pid
    assert owner_is_dead(f"{host}:{proc.pid}:x:{ns}")
    assert not owner_is_dead(f"{host}:{os.getpid()}:x:{ns}")
    assert not owner_is_dead(f"not-{host}:{proc.pid}:x:{ns}")
    # Same host name, another pid namespace (a container on the host network): its pids
    # mean nothing here, so its lease is left to lapse rather than stolen from the living.
    assert not owner_is_dead(f"{host}:{proc.pid}:x:{int(ns) + 1}")
    assert not owner_is_dead(f"{host}:{proc.pid}:x")  # an identity that does not say


def test_a_worker_in_another_pid_namespace_is_not_judged_dead(settings: Settings) -> None:
    """A real process in its own pid namespace (unshare) holds a lease; its pid does not exist
    here, yet it is alive: the worker here must not take its job."""
    if shutil.which("unshare") is None:
        pytest.skip("cannot make a pid namespace here: no unshare command (util-linux)")
    unshare = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"],
                             capture_output=True, check=False)
    if unshare.returncode != 0:
        pytest.skip(f"cannot make a pid namespace here: {unshare.stderr.decode().strip()}")
    code = ("import time; from storyboard.jobs.runtime import worker_identity; "
            "print(worker_identity(), flush=True); time.sleep(30)")
    holder = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", sys.executable,
                               "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        identity = holder.stdout.readline().strip()
        assert identity.split(":")[3] != pid_namespace()  # its identity says where it lives
        assert not owner_is_dead(identity)
    finally:
        holder.kill()
        holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()


def test_serve_runs_jobs_with_its_embedded_worker(settings: Settings) -> None:
    import httpx

    from storyboard.api.app import create_app

    from .live_server import serve

    with serve(create_app(get_settings(), embedded_worker=True)) as base:
        job = httpx.post(f"{base}/api/v2/generate", json={"prompt": "A cat", "duration": 15})
        job_id = job.json()["job_id"]
        wait(lambda: status(job_id) in FINAL)
    assert status(job_id) == "storyboard_ready"
    assert Path(settings.media_dir / "jobs" / str(job_id) / "scene-03-v1.png").is_file()


def test_the_worker_outlives_a_database_that_drops_its_connections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PostgreSQL restarts (here: every connection to the database is terminated) between
    two jobs: the worker keeps polling and runs the next job."""
    with postgres_database() as url:
        monkeypatch.setenv("DATABASE_URL", url)
        settings = get_settings(worker_poll_interval=0.02)
        provider = ScriptedProvider()

        async def main() -> None:
            worker = Worker(settings, provider)
            runner = asyncio.create_task(worker.run())
            first = new_job(15)
            while status(first) not in FINAL:
                assert not runner.done(), runner
                await asyncio.sleep(0.02)
            terminate_connections(url)
            # The worker polls first (every 0.02 s) and meets the dead connections itself:
            # this process shares one pool, and the first error anywhere renews it.
            await asyncio.sleep(0.5)
            second = _retrying(lambda: new_job(15))
            while status(second) not in FINAL:
                assert not runner.done(), runner  # the worker must still be polling
                await asyncio.sleep(0.02)
            worker.stop()
            await runner
            assert [status(first), status(second)] == ["storyboard_ready"] * 2

        asyncio.run(asyncio.wait_for(main(), 60))


def terminate_connections(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect("host=127.0.0.1 dbname=test", autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))


def _retrying(make: Callable[[], int]) -> int:
    try:
        return make()
    except OperationalError:  # a dead pooled connection: the pool is renewed, try once more
        return make()
