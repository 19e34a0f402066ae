"""The image cache: an identical request reuses the stored image, free; identical requests in
flight at once make one prediction, across worker processes too."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from storyboard.config import Settings
from storyboard.db import get_engine, get_job_row
from storyboard.db.ledger import job_ledger
from storyboard.jobs import JobRuntime, run_storyboard_job
from storyboard.jobs.review import request_regeneration
from tests.fake_replicate import (  # the fixtures register by import, under their own names
    FAKE_API_KEY,
    FakeReplicate,
    FakeReplicateProcess,
    fake_replicate_fixture,  # noqa: F401
    fake_replicate_server_fixture,  # noqa: F401
)

from .jobstate import wait
from .test_replicate_jobs import PRICE, THREE_SCENES, new_job, run_job, settings_for, storyboard_of


@pytest.fixture
def fake(fake_replicate: FakeReplicate) -> FakeReplicate:
    return fake_replicate


SEEDED = {**THREE_SCENES, "seed": 42}


def cost(settings: Settings, job_id: int) -> float:
    row = get_job_row(get_engine(settings), job_id)
    assert row is not None
    return row.actual_cost or 0.0


def test_an_identical_request_reuses_the_stored_image_for_free(fake: FakeReplicate) -> None:
    settings = settings_for(fake)
    first = new_job(SEEDED)
    run_job(first, settings)
    assert len(fake.creations) == 3
    second = new_job(SEEDED)
    run_job(second, settings)
    assert len(fake.creations) == 3  # no prediction made for the second job
    entries = storyboard_of(second)
    assert all(e.cached and e.generation_status == "completed" for e in entries)
    assert [e.cache_source for e in entries] == [
        {"job_id": first, "scene_number": n} for n in (1, 2, 3)]
    for mine, theirs in zip(entries, storyboard_of(first), strict=True):
        ours = settings.media_dir / mine.image_url.removeprefix("/media/")  # type: ignore[union-attr]
        source = settings.media_dir / theirs.image_url.removeprefix("/media/")  # type: ignore[union-attr]
        assert ours.read_bytes() == source.read_bytes() and f"/jobs/{second}/" in mine.image_url  # type: ignore[operator]
    assert cost(settings, first) == pytest.approx(3 * PRICE)
    assert cost(settings, second) == 0 and job_ledger(get_engine(settings), second) == []


def test_random_seeds_miss_and_the_cache_can_be_turned_off(fake: FakeReplicate) -> None:
    settings = settings_for(fake)
    run_job(new_job(THREE_SCENES), settings)
    run_job(new_job(THREE_SCENES), settings)
    assert len(fake.creations) == 6  # each job drew its own seeds
    run_job(new_job(SEEDED), settings)
    run_job(new_job({**SEEDED, "cache": False}), settings)  # the request says: fresh images
    assert len(fake.creations) == 12
    run_job(new_job(SEEDED), settings_for(fake, image_cache="off"))
    assert len(fake.creations) == 15


def test_identical_requests_in_flight_make_one_prediction(
        fake: FakeReplicate, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.INFO)
    settings = settings_for(fake)
    for _ in range(3):
        fake.plan(latency=1.0)
    jobs = [new_job(SEEDED), new_job(SEEDED)]

    async def main() -> None:
        rt = JobRuntime.create(settings)
        try:
            await asyncio.gather(*(run_storyboard_job(j, rt) for j in jobs))
        finally:
            await rt.aclose()

    asyncio.run(main())
    assert len(fake.creations) == 3, caplog.text
    a, b = (storyboard_of(j) for j in jobs)
    assert all(e.generation_status == "completed" for e in a + b)
    # Each scene made by one job, reused by the other (which one is a race, scene by scene).
    assert all(x.cached != y.cached for x, y in zip(a, b, strict=True))
    assert cost(settings, jobs[0]) + cost(settings, jobs[1]) == pytest.approx(3 * PRICE)


def test_a_failed_request_is_tried_again_by_the_next_asker(fake: FakeReplicate) -> None:
    settings = settings_for(fake, max_retries=1)
    first = new_job(SEEDED)
    fake.plan("failed")  # the first create (of whichever scene) fails for good
    run_job(first, settings)
    statuses = [e.generation_status for e in storyboard_of(first)]
    assert sorted(statuses) == ["completed", "completed", "failed"]
    lost = statuses.index("failed")
    second = new_job(SEEDED)
    run_job(second, settings)
    entries = storyboard_of(second)
    assert [e.cached for e in entries] == [n != lost for n in range(3)]
    assert all(e.generation_status == "completed" for e in entries)
    assert len(fake.creations) == 4


def test_a_regeneration_of_an_unchanged_scene_with_the_jobs_seed_is_free(
        fake: FakeReplicate) -> None:
    """With a seed of its own, redrawing an unchanged scene asks for the very same image: the
    cache gives it back instead of paying for it again."""
    settings = settings_for(fake)
    job_id = new_job(SEEDED)
    run_job(job_id, settings)
    request_regeneration(get_engine(settings), job_id, 2)
    run_job(job_id, settings)
    entry = storyboard_of(job_id)[1]
    assert entry.cached and entry.cache_source == {"job_id": job_id, "scene_number": 2}
    assert len(entry.versions) == 1 and len(fake.creations) == 3
    assert cost(settings, job_id) == pytest.approx(3 * PRICE)


def test_worker_processes_share_one_prediction_per_request(tmp_path: Path) -> None:
    """Two `storyboard worker` processes on one database, each taking one of two identical
    jobs: the requests are claimed in the database, so each image is made once."""
    with FakeReplicateProcess(latency=1.5) as fake:
        env = {**os.environ, "DATA": str(tmp_path / "DATA"), "REPLICATE_API_KEY": FAKE_API_KEY,
               "REPLICATE_BASE_URL": fake.base_url, "STORYBOARD_IMAGE_PROVIDER": "replicate",
               "STORYBOARD_WORKER_MAX_JOBS": "1", "STORYBOARD_WORKER_POLL_INTERVAL": "0.05",
               "STORYBOARD_REPLICATE_POLL_INTERVAL": "0.05", "STORYBOARD_PLANNER": "rules"}
        os.environ["DATA"] = env["DATA"]
        jobs = [new_job(SEEDED), new_job(SEEDED)]
        logs = [tmp_path / f"worker-{n}.log" for n in range(2)]
        workers = []
        for log in logs:
            with log.open("w") as out:  # the child keeps its own copy
                workers.append(subprocess.Popen([sys.executable, "-m", "storyboard", "worker"],
                                                env=env, stdout=out, stderr=subprocess.STDOUT))
        try:
            from .jobstate import status

            wait(lambda: all(status(j) == "storyboard_ready" for j in jobs), timeout=60)
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            for worker in workers:
                worker.wait(30)
        stats = httpx.get(f"{fake.base_url.removesuffix('/v1')}/_fake/stats", timeout=10).json()
    assert stats["creations"] == 3, "\n".join(log.read_text() for log in logs)
    a, b = (storyboard_of(j) for j in jobs)
    assert all(x.cached != y.cached for x, y in zip(a, b, strict=True))
