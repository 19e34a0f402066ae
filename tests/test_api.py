"""The spec's FastAPI integration: POST /api/v2/generate, GET /api/v2/jobs/{job_id}."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from storyboard import JobResponse, get_job
from storyboard.api.app import create_app
from storyboard.config import Settings

from .live_server import serve


@contextmanager
def client(settings: Settings) -> Iterator[httpx.Client]:
    """The real app under uvicorn on loopback, and an HTTP client for it."""
    with serve(create_app(settings)) as base, httpx.Client(base_url=base, timeout=30) as c:
        yield c


def wait_final(c: httpx.Client, job_id: int) -> httpx.Response:
    deadline = time.monotonic() + 30
    while True:
        response = c.get(f"/api/v2/jobs/{job_id}")
        if response.json()["status"] in ("storyboard_ready", "failed", "cancelled"):
            return response
        assert time.monotonic() < deadline, response.json()
        time.sleep(0.05)


def test_generate_then_poll(settings: Settings) -> None:
    with client(settings) as c:
        response = c.post("/api/v2/generate",
                          json={"prompt": "A robot exploring Mars", "duration": 30,
                                "style": "cinematic"})
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "pending" and isinstance(body["job_id"], int)
        job = wait_final(c, body["job_id"])
    assert job.status_code == 200
    parsed = JobResponse.model_validate(job.json())
    assert parsed.status == "storyboard_ready"
    assert parsed.storyboard is not None and len(parsed.storyboard) == 6
    assert parsed.progress.scenes_completed == 6
    assert parsed.approved is False and parsed.error_message is None
    assert set(job.json()) >= {"job_id", "status", "progress", "storyboard", "video_url",
                               "estimated_cost", "created_at", "updated_at", "approved",
                               "error_message"}


def test_unknown_job_is_404(settings: Settings) -> None:
    with client(settings) as c:
        response = c.get("/api/v2/jobs/424242")
    assert response.status_code == 404
    assert response.json() == {"detail": "Job 424242 not found"}


def test_bad_input_is_422_naming_the_field_and_writes_nothing(settings: Settings) -> None:
    cases = [
        ({"prompt": "", "duration": 30}, "prompt"),
        ({"prompt": "x" * 2001}, "prompt"),
        ({"prompt": "ok", "duration": 4}, "duration"),
        ({"prompt": "ok", "duration": 301}, "duration"),
        ({"prompt": "ok", "aspect_ratio": "2:1"}, "aspect_ratio"),
        ({"prompt": "   "}, "prompt"),
    ]
    with client(settings) as c:
        for body, field in cases:
            response = c.post("/api/v2/generate", json=body)
            assert response.status_code == 422, body
            detail = response.json()["detail"]
            assert any(d["loc"][-1] == field for d in detail), detail
    assert get_job(1) is None
