"""Budgets: a job's cap (``max_cost``, else ``STORYBOARD_MAX_JOB_COST``) and the fleet's daily
budget (``STORYBOARD_DAILY_BUDGET``). Jobs run for real against the fake Replicate on loopback;
what the fake bills is what the ledger must hold, and neither may pass a budget."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storyboard.config import Settings, get_settings
from storyboard.db import get_engine, get_job_row
from storyboard.db.engine import _create
from storyboard.db.ledger import job_costs, job_ledger, reserve_daily, spent_today
from storyboard.db.models import GeneratedVideo
from storyboard.jobs.budget import estimate_request, reset_in
from storyboard.jobs.review import request_regeneration
from storyboard.schemas import GenerationRequest
from tests.fake_replicate import (  # the fixtures register by import, under their own names
    FakeReplicate,
    fake_replicate_fixture,  # noqa: F401
    fake_replicate_server_fixture,  # noqa: F401
)

from .services import postgres_database
from .test_api import client, wait_final
from .test_cli import storyboard
from .test_replicate_jobs import (
    PRICE,
    THREE_SCENES,
    new_job,
    run_job,
    settings_for,
    storyboard_of,
)


@pytest.fixture
def fake(fake_replicate: FakeReplicate) -> FakeReplicate:
    return fake_replicate


def job_count(settings: Settings) -> int:
    with Session(get_engine(settings)) as session:
        return session.scalar(select(func.count()).select_from(GeneratedVideo)) or 0


def row_of(settings: Settings, job_id: int) -> GeneratedVideo:
    row = get_job_row(get_engine(settings), job_id)
    assert row is not None
    return row


def billed(fake: FakeReplicate) -> float:
    return len(fake.billed()) * PRICE


# --- the job's cap -------------------------------------------------------------------------

def test_the_estimate_counts_images_at_the_providers_price_and_nothing_for_sketches() -> None:
    request = GenerationRequest(prompt="A robot exploring Mars", duration=30)
    assert estimate_request(get_settings(image_provider="replicate", replicate_api_key="k",
                                         image_price=0.01), request) == pytest.approx(0.06)
    assert estimate_request(get_settings(image_provider="sketch"), request) == 0
    # A language model's plan adds its tokens (gpt-4o-mini's list price here).
    llm = get_settings(image_provider="replicate", replicate_api_key="k", image_price=0.01,
                       planner="openai", llm_api_key="k")
    assert 0.06 < estimate_request(llm, request) < 0.07


def test_a_job_over_its_cap_is_refused_before_anything_is_written(fake: FakeReplicate) -> None:
    settings = settings_for(fake)
    with client(settings) as c:
        response = c.post("/api/v2/generate", json={
            "prompt": "A robot exploring Mars", "duration": 30, "max_cost": 0.05})
        assert response.status_code == 422
        detail = response.json()["detail"][0]
        assert detail["loc"] == ["body", "max_cost"]
        assert "$0.06 is over the job's budget of $0.05" in detail["msg"]
    assert job_count(settings) == 0 and fake.creations == []


def test_the_servers_default_cap_applies_when_the_request_names_none(
        fake: FakeReplicate) -> None:
    settings = settings_for(fake, max_job_cost=0.02)
    with client(settings) as c:
        refused = c.post("/api/v2/generate", json={"prompt": "A robot exploring Mars",
                                                   "duration": 15})
        assert refused.status_code == 422
        assert "raise max_cost (or STORYBOARD_MAX_JOB_COST)" in refused.json()["detail"][0]["msg"]
        # The request's own cap, higher than the server's, stands.
        taken = c.post("/api/v2/generate", json={"prompt": "A robot exploring Mars",
                                                 "duration": 15, "max_cost": 0.03})
        assert taken.status_code == 200
    assert job_count(settings) == 1


def test_the_command_line_refuses_a_job_over_its_cap_as_a_usage_error(
        fake: FakeReplicate, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORYBOARD_IMAGE_PROVIDER", "replicate")
    monkeypatch.setenv("REPLICATE_API_KEY", "r8_test")
    monkeypatch.setenv("REPLICATE_BASE_URL", fake.base_url)
    result = storyboard("generate", "A robot exploring Mars", "--duration", "30",
                        "--max-cost", "0.01")
    assert result.returncode == 2, result.stderr
    assert "max_cost: the estimate $0.018 is over the job's budget of $0.01" in result.stderr
    assert job_count(settings) == 0 and fake.creations == []


def test_a_run_stops_at_its_cap_and_keeps_the_board_so_far(fake: FakeReplicate) -> None:
    settings = settings_for(fake)
    # Written straight to the database: an estimate check would refuse it at the door.
    job_id = new_job({**THREE_SCENES, "max_cost": 0.025})
    assert run_job(job_id, settings) == "storyboard_ready"
    entries = storyboard_of(job_id)
    assert [e.generation_status for e in entries].count("completed") == 2
    stopped = next(e for e in entries if e.generation_status == "failed")
    assert stopped.error is not None
    assert "the job's budget of $0.025 was reached" in stopped.error
    assert "raise its max_cost" in stopped.error
    row = row_of(settings, job_id)
    assert "stopped: the job's budget of $0.025 was reached" in (row.progress or "")
    assert len(fake.creations) == 2
    assert row.actual_cost == pytest.approx(billed(fake)) == pytest.approx(0.02)


def test_retries_count_against_the_cap(fake: FakeReplicate) -> None:
    settings = settings_for(fake)
    fake.plan("failed")  # one create fails (not billed), its scene tries again
    job_id = new_job({**THREE_SCENES, "max_cost": 0.03})
    run_job(job_id, settings)
    # Three creates fit the cap: the retry took the third scene's share, which was not drawn.
    assert len(fake.creations) == 3
    assert [e.generation_status for e in storyboard_of(job_id)].count("completed") == 2
    assert row_of(settings, job_id).actual_cost == pytest.approx(billed(fake))


def test_regenerations_and_rerenders_count_against_the_cap(fake: FakeReplicate) -> None:
    settings = settings_for(fake)
    job_id = new_job({**THREE_SCENES, "max_cost": 0.045})
    run_job(job_id, settings)
    assert job_costs(get_engine(settings), job_id) == (pytest.approx(0.03), 0.0)
    with client(settings) as c:
        one = c.post(f"/api/v2/jobs/{job_id}/scenes/2/regenerate")
        assert one.status_code == 202, one.text  # $0.03 spent, one more image fits $0.045
        wait_final(c, job_id)
        again = c.post(f"/api/v2/jobs/{job_id}/scenes/2/regenerate")
        assert again.status_code == 409
        assert "has $0.04 of its $0.045 budget spent" in again.json()["detail"]
        rerender = c.post(f"/api/v2/jobs/{job_id}/rerender", json={"scenes": [1, 3]})
        assert rerender.status_code == 409 and "raise its max_cost" in rerender.json()["detail"]
    assert len(fake.creations) == 4
    # A redraw queued without the check (an older client, a race) still stops at the cap.
    request_regeneration(get_engine(settings), job_id, 3)
    run_job(job_id, settings)
    scene = storyboard_of(job_id)[2]
    assert scene.generation_status == "failed" and "budget" in (scene.error or "")
    assert len(fake.creations) == 4
    assert row_of(settings, job_id).actual_cost == pytest.approx(billed(fake))


# --- the fleet's daily budget --------------------------------------------------------------

def test_the_daily_budget_stops_paid_work_and_says_when_it_resets(fake: FakeReplicate) -> None:
    settings = settings_for(fake, daily_budget=0.025)
    job_id = new_job(THREE_SCENES)
    run_job(job_id, settings)
    entries = storyboard_of(job_id)
    assert [e.generation_status for e in entries].count("completed") == 2
    stopped = next(e for e in entries if e.generation_status == "failed")
    assert "today's budget of $0.025 was reached" in (stopped.error or "")
    assert len(fake.creations) == 2 and spent_today(get_engine(settings)) == pytest.approx(0.02)
    with client(settings) as c:
        refused = c.post("/api/v2/generate", json={"prompt": "A robot exploring Mars",
                                                   "duration": 15})
        assert refused.status_code == 429
        seconds = int(refused.headers["Retry-After"])
        assert abs(seconds - reset_in()) <= 5 and 0 < seconds <= 86_400
        assert "starts again at midnight UTC" in refused.json()["detail"]
        regenerate = c.post(f"/api/v2/jobs/{job_id}/scenes/1/regenerate")
        assert regenerate.status_code == 429
    assert job_count(settings) == 1
    # Free work goes on: the sketch renderer is not paid.
    sketches = get_settings(image_provider="sketch", daily_budget=0.025)
    with client(sketches) as c:
        taken = c.post("/api/v2/generate", json={"prompt": "A robot exploring Mars",
                                                 "duration": 15})
        assert taken.status_code == 200
        assert wait_final(c, taken.json()["job_id"]).json()["status"] == "storyboard_ready"


def test_a_reservation_is_released_when_no_create_went_out(fake: FakeReplicate) -> None:
    """A create refused before it was made (a 422 for the model) holds nothing of the day."""
    settings = settings_for(fake, daily_budget=1.0, max_retries=1)
    fake.fail_next("create", 422, times=3, body={"detail": "invalid input"})
    job_id = new_job(THREE_SCENES)
    run_job(job_id, settings)
    rows = job_ledger(get_engine(settings), job_id)
    assert {r.status for r in rows} == {"not_created"}
    assert spent_today(get_engine(settings)) == 0 and fake.billed() == []


@contextmanager
def _database(kind: str) -> Iterator[str | None]:
    if kind == "sqlite":
        yield None
    else:
        with postgres_database() as url:
            yield url


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_workers_racing_for_the_last_of_the_day_never_pass_it(kind: str) -> None:
    """Eight workers, each with its own engine (its own connections, as separate processes
    have), reserve as fast as they can: exactly the budget's worth is taken, never more."""
    with _database(kind) as url:
        overrides: dict[str, Any] = {"database_url": url} if url else {}
        settings = get_settings(**overrides)
        job_id = new_job(THREE_SCENES) if url is None else None
        if job_id is None:  # the job row lives in that database
            from storyboard.db import create_job

            job_id = create_job(get_engine(settings), prompt="p", video_url="", model_id="v2",
                                parameters={}, status="pending")
        taken: list[bool] = []
        lock = threading.Lock()

        def worker() -> None:
            engine = _create(settings.resolved_database_url, settings)
            try:
                for n in range(10):
                    ok = reserve_daily(engine, budget=0.1, price=0.01, job_id=job_id,
                                       scene_number=n % 10 + 1, version=1,
                                       provider="replicate", model="m")
                    with lock:
                        taken.append(ok)
            finally:
                engine.dispose()

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert taken.count(True) == 10 and len(taken) == 80
        assert spent_today(get_engine(settings)) == pytest.approx(0.1)


def test_two_jobs_share_the_day_and_together_stay_within_it(fake: FakeReplicate) -> None:
    import asyncio

    from storyboard.jobs import JobRuntime, run_storyboard_job

    settings = settings_for(fake, daily_budget=0.045)
    for _ in range(6):
        fake.plan(latency=0.3)
    jobs = [new_job(THREE_SCENES), new_job(THREE_SCENES)]

    async def main() -> None:
        runtimes = [JobRuntime.create(settings) for _ in jobs]
        try:
            await asyncio.gather(*(run_storyboard_job(j, rt)
                                   for j, rt in zip(jobs, runtimes, strict=True)))
        finally:
            for rt in runtimes:
                await rt.aclose()

    asyncio.run(main())
    drawn = sum(e.generation_status == "completed" for j in jobs for e in storyboard_of(j))
    assert drawn == 4 and len(fake.creations) == 4
    assert spent_today(get_engine(settings)) == pytest.approx(billed(fake)) == pytest.approx(0.04)
    assert sum(row_of(settings, j).actual_cost or 0 for j in jobs) == pytest.approx(0.04)


def test_a_reservation_left_by_a_dead_run_is_looked_for_and_settled(
        fake: FakeReplicate) -> None:
    """A run that died between reserving and learning of its create leaves a ``reserved`` row:
    the next run treats it as an unanswered create, and nothing stays reserved."""
    settings = settings_for(fake, daily_budget=1.0)
    job_id = new_job(THREE_SCENES)
    engine = get_engine(settings)
    assert reserve_daily(engine, budget=1.0, price=PRICE, job_id=job_id, scene_number=1,
                         version=1, provider="replicate", model="black-forest-labs/flux-schnell")
    run_job(job_id, settings)
    rows = job_ledger(engine, job_id)
    assert "reserved" not in {r.status for r in rows}
    billed_now, possible = job_costs(engine, job_id)
    assert billed_now == pytest.approx(billed(fake))
    # The dead run's create was never found: a possible charge, shown, never hidden.
    assert possible == pytest.approx(PRICE)


def test_the_budget_settings_are_checked() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="max_job_cost"):
        get_settings(max_job_cost=0)
    with pytest.raises(ValidationError, match="daily_budget"):
        get_settings(daily_budget=-1)
