"""The prediction ledger: every prediction a job makes is a row, and the job's cost is theirs.

Jobs run for real against the fake Replicate on loopback; the fake says what Replicate would
bill (``FakeReplicate.billed``: image predictions that succeeded). A job's ``actual_cost`` must be
exactly that, after crashes, retries, regenerations, lost answers and cancels; what cannot be
known is shown as a possible charge, never hidden.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import pytest

from storyboard.config import Settings
from storyboard.db import get_engine, get_job_row
from storyboard.db.ledger import job_ledger
from storyboard.jobs import JobRuntime, run_storyboard_job
from storyboard.jobs.review import cancel_job, request_regeneration
from tests.fake_replicate import (  # the fixtures register by import, under their own names
    FakeReplicate,
    fake_replicate_fixture,  # noqa: F401
    fake_replicate_server_fixture,  # noqa: F401
)

from .test_replicate_jobs import (
    PRICE,
    SIX_SCENES,
    THREE_SCENES,
    new_job,
    run_job,
    settings_for,
)


@pytest.fixture
def fake(fake_replicate: FakeReplicate) -> FakeReplicate:
    return fake_replicate


def costs(settings: Settings, job_id: int) -> tuple[float, float]:
    row = get_job_row(get_engine(settings), job_id)
    assert row is not None
    return row.actual_cost or 0.0, row.possible_cost


def test_every_prediction_is_a_row_and_the_cost_is_their_sum(fake: FakeReplicate) -> None:
    settings = settings_for(fake)
    job_id = new_job(THREE_SCENES)
    run_job(job_id, settings)
    rows = job_ledger(get_engine(settings), job_id)
    assert sorted(r.scene_number for r in rows) == [1, 2, 3]  # type: ignore[type-var]
    assert {r.prediction_id for r in rows} == set(fake.predictions)
    for row in rows:
        assert (row.kind, row.provider, row.model, row.status) == (
            "image", "replicate", "black-forest-labs/flux-schnell", "succeeded")
        assert row.billed_cost == PRICE and row.possible_cost == 0 and row.version == 1
        assert row.finished_at is not None and row.created_at <= row.finished_at
    assert costs(settings, job_id) == (pytest.approx(3 * PRICE), 0)
    assert len(fake.billed()) == 3


def test_a_prediction_is_in_the_ledger_before_anything_waits_on_it(fake: FakeReplicate) -> None:
    settings = settings_for(fake)
    job_id = new_job(THREE_SCENES)
    for _ in range(3):
        fake.plan(latency=3.0)  # still running when the create's 1 s wait is over

    async def main() -> list[Any]:
        rt = JobRuntime.create(settings)
        run = asyncio.create_task(run_storyboard_job(job_id, rt))
        try:
            deadline = time.monotonic() + 10
            while len(job_ledger(rt.engine, job_id)) < 3:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            rows = job_ledger(rt.engine, job_id)
            assert not run.done()
            return rows
        finally:
            cancel_job(rt.engine, job_id)
            rt.nudge(job_id)
            await run
            await rt.aclose()

    rows = asyncio.run(main())
    assert {r.status for r in rows} == {"starting"}
    assert all(r.possible_cost == PRICE and r.billed_cost == 0 for r in rows)
    # Cancelled: each was cancelled and settled by how it ended (no image: not billed).
    after = job_ledger(get_engine(settings), job_id)
    assert {r.status for r in after} == {"canceled"} and fake.billed() == []
    assert costs(settings, job_id) == (0, 0)


def test_a_run_that_died_mid_job_resumes_with_the_right_cost(fake: FakeReplicate) -> None:
    """The issue's first bug: a job killed after 5 of 6 scenes reported one image's cost."""
    settings = settings_for(fake)
    job_id = new_job(SIX_SCENES)
    for _ in range(5):
        fake.plan(latency=0.05)
    fake.plan(latency=2.5)  # still running when the first run goes away

    async def first_run() -> None:
        rt = JobRuntime.create(settings)
        run = asyncio.create_task(run_storyboard_job(job_id, rt))
        deadline = time.monotonic() + 10
        while sum(r.status == "succeeded" for r in job_ledger(rt.engine, job_id)) < 5:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        run.cancel()  # the process goes away mid-run (its last prediction still running)
        with pytest.raises(asyncio.CancelledError):
            await run
        await rt.aclose()

    asyncio.run(first_run())
    assert costs(settings, job_id)[0] == pytest.approx(5 * PRICE)  # durable as they finished
    run_job(job_id, settings)
    actual, possible = costs(settings, job_id)
    assert actual == pytest.approx(len(fake.billed()) * PRICE) == pytest.approx(6 * PRICE)
    assert possible == 0 and len(fake.creations) == 6  # the sixth was resumed, not remade
    statuses = [r.status for r in job_ledger(get_engine(settings), job_id)]
    assert statuses == ["succeeded"] * 6


def test_a_download_that_never_comes_is_billed_once(fake: FakeReplicate) -> None:
    settings = settings_for(fake)
    job_id = new_job(THREE_SCENES)
    fake.fail_next("file", 404, times=20)  # every download of every attempt
    run_job(job_id, settings)
    rows = job_ledger(get_engine(settings), job_id)
    assert len(rows) == 3 and all(r.billed_cost == PRICE for r in rows)  # resumed, not remade
    assert len(fake.creations) == 3
    assert costs(settings, job_id) == (pytest.approx(3 * PRICE), 0)


def test_a_lost_answer_found_again_is_paid_once(fake: FakeReplicate) -> None:
    settings = settings_for(fake)
    job_id = new_job(THREE_SCENES)
    fake.plan(answer_status=504)  # made, but the gateway answered 504
    run_job(job_id, settings)
    assert len(fake.creations) == 3 and len(fake.billed()) == 3  # adopted, not made again
    rows = job_ledger(get_engine(settings), job_id)
    assert len(rows) == 3 and all(r.prediction_id for r in rows)
    assert costs(settings, job_id) == (pytest.approx(3 * PRICE), 0)


def test_a_loss_that_cannot_be_looked_up_is_a_possible_charge(fake: FakeReplicate) -> None:
    """The issue's third bug: paid twice and counted once. Now: counted as a possible charge."""
    settings = settings_for(fake)
    job_id = new_job(THREE_SCENES)
    fake.plan(answer_status=504)  # made, but the answer lost ...
    fake.fail_next("list", 500, times=50)  # ... and the listing cannot be read
    run_job(job_id, settings)
    assert len(fake.billed()) == 4  # Replicate bills the lost one and the new one
    actual, possible = costs(settings, job_id)
    assert actual == pytest.approx(3 * PRICE) and possible == pytest.approx(PRICE)
    lost = [r for r in job_ledger(get_engine(settings), job_id) if r.status == "lost"]
    assert len(lost) == 1 and lost[0].prediction_id is None and lost[0].possible_cost == PRICE


def test_a_loss_looked_up_in_a_complete_listing_is_no_charge(fake: FakeReplicate) -> None:
    settings = settings_for(fake)
    job_id = new_job(THREE_SCENES)
    fake.fail_next("create", 502)  # answered 502 and, this time, really never made
    run_job(job_id, settings)
    statuses = sorted(r.status for r in job_ledger(get_engine(settings), job_id))
    assert statuses == ["not_created", "succeeded", "succeeded", "succeeded"]
    assert costs(settings, job_id) == (pytest.approx(3 * PRICE), 0)


def test_failed_predictions_are_rows_that_cost_nothing(fake: FakeReplicate) -> None:
    settings = settings_for(fake)
    job_id = new_job(THREE_SCENES)
    fake.plan("failed")
    fake.plan("aborted")
    run_job(job_id, settings)
    rows = job_ledger(get_engine(settings), job_id)
    assert sorted(r.status for r in rows) == ["aborted", "failed", "succeeded", "succeeded",
                                              "succeeded"]
    assert costs(settings, job_id) == (pytest.approx(3 * PRICE), 0)
    assert len(fake.billed()) == 3


def test_regenerations_add_their_rows(fake: FakeReplicate) -> None:
    settings = settings_for(fake)
    job_id = new_job(THREE_SCENES)
    run_job(job_id, settings)
    request_regeneration(get_engine(settings), job_id, 2)
    run_job(job_id, settings)
    rows = job_ledger(get_engine(settings), job_id)
    assert sorted((r.scene_number, r.version) for r in rows) == [  # type: ignore[type-var]
        (1, 1), (2, 1), (2, 2), (3, 1)]
    assert costs(settings, job_id)[0] == pytest.approx(4 * PRICE) == len(fake.billed()) * PRICE


def test_the_costs_endpoint_lists_the_ledger(fake: FakeReplicate) -> None:
    from .test_review import client

    settings = settings_for(fake)
    job_id = new_job(THREE_SCENES)
    fake.plan(answer_status=504)
    fake.fail_next("list", 500, times=50)
    run_job(job_id, settings)
    with client(settings) as c:
        body = c.get(f"/api/v2/jobs/{job_id}/costs").json()
        job = c.get(f"/api/v2/jobs/{job_id}").json()
        assert c.get("/api/v2/jobs/999/costs").status_code == 404
    assert body["actual_cost"] == pytest.approx(3 * PRICE)
    assert body["possible_cost"] == pytest.approx(PRICE) and body["cost_uncertain"] is True
    assert len(body["predictions"]) == 4
    first = body["predictions"][0]
    assert {"scene_number", "version", "kind", "provider", "model", "prediction_id", "status",
            "billed_cost", "possible_cost", "created_at", "finished_at"} <= set(first)
    assert job["cost_uncertain"] is True
    assert math.isclose(job["cost_upper_bound"], 4 * PRICE)


def test_the_costs_command_totals_spend_by_day_and_by_job(fake: FakeReplicate) -> None:
    from .test_cli import storyboard

    settings = settings_for(fake)
    for _ in range(2):
        run_job(new_job(THREE_SCENES), settings)
    result = storyboard("costs")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert today in out and "$0.06" in out  # 6 images at $0.01
    assert "A robot exploring Mars" in out
    later = storyboard("costs", "--since", "2999-01-01")
    assert later.returncode == 0 and "no spend" in later.stdout.lower()
    bad = storyboard("costs", "--since", "yesterday")
    assert bad.returncode == 2 and "--since" in bad.stderr


def test_planning_tokens_are_rows_too(fake: FakeReplicate, monkeypatch: pytest.MonkeyPatch,
                                      ) -> None:
    """A language model on Replicate plans the job: its prediction is a row, billed its
    tokens; images and plan add up to the job's cost."""
    monkeypatch.setenv("STORYBOARD_PLANNER", "replicate")
    settings = settings_for(fake)
    job_id = new_job(THREE_SCENES)
    run_job(job_id, settings)
    rows = job_ledger(get_engine(settings), job_id)
    plan_rows = [r for r in rows if r.kind == "plan"]
    assert len(plan_rows) == 1 and plan_rows[0].provider == "replicate"
    assert plan_rows[0].model == "openai/gpt-4o-mini" and plan_rows[0].billed_cost > 0
    assert plan_rows[0].prediction_id in fake.predictions
    row = get_job_row(get_engine(settings), job_id)
    assert row is not None and row.plan is not None
    assert costs(settings, job_id)[0] == pytest.approx(
        3 * PRICE + plan_rows[0].billed_cost)


def test_a_cancel_during_planning_still_counts_its_calls(fake: FakeReplicate,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORYBOARD_PLANNER", "replicate")
    settings = settings_for(fake, parsing_timeout=20)
    job_id = new_job(THREE_SCENES)
    fake.plan("hang")  # the language model never answers

    async def main() -> float:
        rt = JobRuntime.create(settings)
        run = asyncio.create_task(run_storyboard_job(job_id, rt))
        deadline = time.monotonic() + 10
        while not job_ledger(rt.engine, job_id):  # its prediction, recorded when created
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        started = time.monotonic()
        cancel_job(rt.engine, job_id)
        rt.nudge(job_id)
        await run
        await rt.aclose()
        return time.monotonic() - started

    stopped_after = asyncio.run(main())
    assert stopped_after < 5  # heard at once, not after the 20 s planning limit
    row = get_job_row(get_engine(settings), job_id)
    assert row is not None and row.status == "cancelled"
    assert fake.cancels == [next(iter(fake.predictions))]  # the model's prediction stopped


def test_cost_uncertain_is_false_for_a_free_job(settings: Settings) -> None:
    from .test_review import ThreadDispatch, client

    with client(settings, dispatch=ThreadDispatch(settings)) as c:
        job_id = c.post("/api/v2/generate", json={"prompt": "x", "duration": 15}).json()[
            "job_id"]
        deadline = time.monotonic() + 30
        while c.get(f"/api/v2/jobs/{job_id}").json()["status"] != "storyboard_ready":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        job = c.get(f"/api/v2/jobs/{job_id}").json()
        ledger = c.get(f"/api/v2/jobs/{job_id}/costs").json()
    assert job["actual_cost"] == 0 and job["cost_uncertain"] is False
    assert job["cost_upper_bound"] is None and ledger["predictions"] == []
