"""Webhooks from real jobs: a job that asks for them gets signed POSTs of its JobResponse on
its events, from whichever process runs it (the API's background tasks, ``serve``'s embedded
worker); the submission is checked first. The outbox, signing and retries on their own are
``test_webhooks.py``'s."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from storyboard.api.app import create_app
from storyboard.config import Settings, get_settings
from storyboard.db import get_engine
from storyboard.db.models import GeneratedVideo, WebhookMessage
from storyboard.webhooks import new_secret
from tests.fake_replicate import (  # the fixtures register by import, under their own names
    FakeReplicate,
    fake_replicate_fixture,  # noqa: F401
    fake_replicate_server_fixture,  # noqa: F401
)

from .live_server import serve
from .test_api import client, wait_final
from .test_replicate_jobs import THREE_SCENES, new_job, run_job, settings_for
from .webhook_receiver import Receiver, running_receiver

SECRET = new_secret()
PROMPT = "A robot exploring Mars"


def hooked(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"webhook_secret": SECRET, "webhook_allow_private": True,
                              "webhook_poll_interval": 0.05}
    return get_settings(**{**values, **overrides})


def until(check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def events(receiver: Receiver) -> list[str]:
    """The event of each accepted delivery, in arrival order (the outbox row says which)."""
    accepted = receiver.accepted  # one snapshot: deliveries may still be arriving
    with Session(get_engine(get_settings())) as session:
        rows = {m.id: m.event for m in session.scalars(select(WebhookMessage).where(
            WebhookMessage.id.in_({d.msg_id for d in accepted})))}
    return [rows[d.msg_id] for d in accepted]


def test_a_job_sends_start_scene_and_completed_signed(isolated_env: Any) -> None:
    settings = hooked()
    with running_receiver(SECRET) as receiver, client(settings) as c:
        job_id = c.post("/api/v2/generate", json={
            "prompt": PROMPT, "duration": 30, "webhook_url": receiver.url,
            "webhook_events": ["start", "scene", "completed"]}).json()["job_id"]
        final = wait_final(c, job_id).json()
        until(lambda: "completed" in events(receiver))
    assert all(d.verified for d in receiver.deliveries)
    seen = events(receiver)
    assert seen.count("start") == 1 and seen.count("completed") == 1
    assert seen.count("scene") == 6  # one per finished scene
    completed = next(d for d in receiver.accepted if events_of(d) == "completed")
    body = completed.json()
    assert body == final  # the JobResponse, as GET /api/v2/jobs/{id} gives it
    assert completed.headers["content-type"] == "application/json"
    assert len({d.msg_id for d in receiver.accepted}) == len(receiver.accepted)
    scenes = [d.json() for d in receiver.accepted if events_of(d) == "scene"]
    assert all(s["job_id"] == job_id for s in scenes)
    assert max(s["progress"]["scenes_completed"] for s in scenes) == 6


def events_of(delivery: Any) -> str:
    with Session(get_engine(get_settings())) as session:
        row = session.get(WebhookMessage, delivery.msg_id)
        assert row is not None
        return row.event


def test_by_default_only_completed_is_sent(isolated_env: Any) -> None:
    settings = hooked()
    with running_receiver(SECRET) as receiver, client(settings) as c:
        job_id = c.post("/api/v2/generate", json={
            "prompt": PROMPT, "duration": 15, "webhook_url": receiver.url}).json()["job_id"]
        wait_final(c, job_id)
        until(lambda: len(receiver.accepted) == 1)
        time.sleep(0.3)  # nothing else comes
    assert events(receiver) == ["completed"]
    assert receiver.accepted[0].json()["status"] == "storyboard_ready"


def test_the_embedded_worker_delivers_and_a_cancel_is_completed(isolated_env: Any) -> None:
    """``storyboard serve``: jobs and webhooks from the in-process worker; a job cancelled
    mid-run gets its completed event with status cancelled."""
    settings = hooked(sketch_delay=0.5)
    app = create_app(settings, embedded_worker=True)
    import httpx

    with running_receiver(SECRET) as receiver, serve(app) as base, \
            httpx.Client(base_url=base, timeout=30) as c:
        job_id = c.post("/api/v2/generate", json={
            "prompt": PROMPT, "duration": 30, "webhook_url": receiver.url,
            "webhook_events": ["start", "completed"]}).json()["job_id"]
        until(lambda: "start" in events(receiver))
        assert c.post(f"/api/v2/jobs/{job_id}/cancel").status_code == 200
        until(lambda: "completed" in events(receiver))
    completed = next(d for d in receiver.accepted if events_of(d) == "completed")
    assert completed.json()["status"] == "cancelled"


def test_a_failed_job_is_completed_too(fake: FakeReplicate) -> None:
    settings = settings_for(fake, webhook_secret=SECRET, webhook_allow_private=True)
    fake.fail_next("create", 401, times=10, body={"detail": "Unauthenticated"})
    job_id = new_job({**THREE_SCENES, "webhook_url": "http://127.0.0.1:9/hook"})
    assert run_job(job_id, settings) == "failed"
    with Session(get_engine(settings)) as session:
        messages = session.scalars(select(WebhookMessage).where(
            WebhookMessage.job_id == job_id)).all()
    assert [m.event for m in messages] == ["completed"]
    assert '"status":"failed"' in messages[0].payload


@pytest.fixture
def fake(fake_replicate: FakeReplicate) -> FakeReplicate:
    return fake_replicate


@pytest.mark.parametrize(("settings_values", "url", "expected"), [
    ({}, "https://example.com/hook", "STORYBOARD_WEBHOOK_SECRET"),
    ({"webhook_secret": SECRET}, "ftp://example.com/hook", "http"),
    ({"webhook_secret": SECRET}, "http://127.0.0.1:8000/hook", "is not public"),
    ({"webhook_secret": SECRET}, "http://user:pw@example.com/hook", "user name or password"),
])
def test_a_webhook_that_could_never_be_delivered_is_refused_before_the_job_is_saved(
        isolated_env: Any, settings_values: dict[str, Any], url: str, expected: str) -> None:
    settings = get_settings(**settings_values)
    with client(settings) as c:
        response = c.post("/api/v2/generate", json={"prompt": PROMPT, "webhook_url": url})
        assert response.status_code == 422, response.text
        detail = response.json()["detail"][0]
        assert detail["loc"] == ["body", "webhook_url"]
        assert expected in detail["msg"], detail["msg"]
        unknown = c.post("/api/v2/generate", json={"prompt": PROMPT, "webhook_url": url,
                                                   "webhook_events": ["finished"]})
        assert unknown.status_code == 422
    with Session(get_engine(settings)) as session:
        assert session.scalars(select(GeneratedVideo)).first() is None
