"""The review loop over real HTTP: events, regenerate, approve, cancel, media."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from storyboard.api.app import create_app
from storyboard.config import Settings, get_settings

from .live_server import serve

FINAL = ("storyboard_ready", "failed", "cancelled")


@contextmanager
def client(settings: Settings, **app_args: object) -> Iterator[httpx.Client]:
    with serve(create_app(settings, **app_args)) as base, \
            httpx.Client(base_url=base, timeout=30) as c:  # type: ignore[arg-type]
        yield c


def wait_for(c: httpx.Client, job_id: int, statuses: tuple[str, ...] = FINAL) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + 30
    while True:
        body = c.get(f"/api/v2/jobs/{job_id}").json()
        if body["status"] in statuses:
            return body  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, body
        time.sleep(0.03)


def start(c: httpx.Client, **body: object) -> int:
    response = c.post("/api/v2/generate", json={"prompt": "A robot exploring Mars",
                                                 "duration": 15, **body})
    assert response.status_code == 200, response.text
    return int(response.json()["job_id"])


def test_regenerate_keeps_versions_and_other_scenes(settings: Settings) -> None:
    with client(settings) as c:
        job_id = start(c)
        before = wait_for(c, job_id)
        assert before["status"] == "storyboard_ready"
        approved = c.post(f"/api/v2/jobs/{job_id}/approve").json()
        assert approved["approved"] is True
        response = c.post(f"/api/v2/jobs/{job_id}/scenes/2/regenerate",
                          json={"description": "The robot finds water ice"})
        assert response.status_code == 202
        assert response.json()["approved"] is False  # the board changed: review again
        after = wait_for(c, job_id)
    assert after["status"] == "storyboard_ready"
    old, new = before["storyboard"], after["storyboard"]
    assert new[0] == old[0] and new[2] == old[2]  # untouched
    scene = new[1]
    assert scene["scene"]["description"] == "The robot finds water ice"
    assert "The robot finds water ice" in scene["scene"]["image_prompt"]
    assert scene["image_url"].endswith("scene-02-v2.png")
    assert scene["versions"][0]["image_url"] == old[1]["image_url"]
    assert scene["versions"][0]["description"] == old[1]["scene"]["description"]
    assert after["progress"]["scenes_completed"] == 3


def test_regenerate_charges_the_new_image(monkeypatch: pytest.MonkeyPatch) -> None:
    from .providers import ScriptedProvider

    provider = ScriptedProvider()
    settings = get_settings()

    def dispatch(job_id: int, tasks: object) -> None:
        from storyboard.jobs import generate_storyboard_task

        tasks.add_task(generate_storyboard_task, job_id, settings=settings,  # type: ignore[attr-defined]
                       provider=provider)

    with client(settings, dispatch=dispatch) as c:
        job_id = start(c)
        first = wait_for(c, job_id)
        assert first["actual_cost"] == pytest.approx(0.009)
        c.post(f"/api/v2/jobs/{job_id}/scenes/3/regenerate")
        time.sleep(0.05)
        after = wait_for(c, job_id)
    assert after["actual_cost"] == pytest.approx(0.012)
    assert after["estimated_cost"] == pytest.approx(0.012)
    assert len(provider.calls) == 4


def test_approve_only_when_ready_and_cancel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORYBOARD_SKETCH_DELAY", "0.2")
    monkeypatch.setenv("STORYBOARD_SCENE_CONCURRENCY", "1")
    settings = get_settings()
    with client(settings) as c:
        job_id = start(c, duration=50)
        deadline = time.monotonic() + 20
        while c.get(f"/api/v2/jobs/{job_id}").json()["progress"]["scenes_completed"] < 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        refused = c.post(f"/api/v2/jobs/{job_id}/approve")
        assert refused.status_code == 409
        assert "only a storyboard_ready job can be approved" in refused.json()["detail"]
        cancelled = c.post(f"/api/v2/jobs/{job_id}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        time.sleep(0.3)
        files = sorted((settings.media_dir / "jobs" / str(job_id)).glob("scene-*"))
        time.sleep(0.6)
        assert sorted((settings.media_dir / "jobs" / str(job_id)).glob("scene-*")) == files
        final = c.get(f"/api/v2/jobs/{job_id}").json()
        again = c.post(f"/api/v2/jobs/{job_id}/cancel")
    assert final["status"] == "cancelled"
    done = [e for e in final["storyboard"] if e["generation_status"] == "completed"]
    assert 0 < len(done) < 10  # stopped part-way
    assert final["progress"]["message"] == "Cancelled"
    assert again.status_code == 409


def test_events_stream_progress_then_done(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORYBOARD_SKETCH_DELAY", "0.1")
    monkeypatch.setenv("STORYBOARD_SCENE_CONCURRENCY", "1")
    monkeypatch.setenv("STORYBOARD_EVENTS_INTERVAL", "0.02")
    settings = get_settings()
    events: list[tuple[str, dict]] = []  # type: ignore[type-arg]
    with client(settings) as c:
        job_id = start(c, duration=20)
        with c.stream("GET", f"/api/v2/jobs/{job_id}/events") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            name = None
            for line in response.iter_lines():
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: ") and name:
                    events.append((name, json.loads(line[6:])))
        assert c.get("/api/v2/jobs/999/events").status_code == 404
    assert events[-1][0] == "done" and events[-1][1]["status"] == "storyboard_ready"
    progress = [e for n, e in events if n == "progress"]
    completed = [e["progress"]["scenes_completed"] for e in progress]
    assert len(set(completed)) >= 3 and completed == sorted(completed)
    assert any("Generating image for scene" in e["progress"]["message"] for e in progress)


def test_media_served_with_types_and_traversal_refused(settings: Settings) -> None:
    secret = settings.data_dir / "secret.txt"
    with client(settings) as c:
        job_id = start(c)
        body = wait_for(c, job_id)
        url = body["storyboard"][0]["image_url"]
        image = c.get(url)
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"
        assert image.content[:4] == b"\x89PNG"
        secret.write_text("no")
        for bad in ("/media/../secret.txt", "/media/%2e%2e/secret.txt",
                    "/media/..%2fsecret.txt", "/media/jobs/1/nope.png", "/media/storyboard.db",
                    "/media/../storyboard.db", "/media/%2e%2e/%2e%2e/etc/passwd"):
            response = c.get(bad)
            assert response.status_code == 404, bad
            assert b"no" != response.content


def test_unknown_jobs_everywhere_are_404(settings: Settings) -> None:
    with client(settings) as c:
        for method, path in [("POST", "/api/v2/jobs/77/approve"), ("POST", "/api/v2/jobs/77/cancel"),
                             ("POST", "/api/v2/jobs/77/scenes/1/regenerate"),
                             ("GET", "/api/v2/jobs/77/export.zip")]:
            response = c.request(method, path)
            assert response.status_code == 404, path
            assert response.json()["detail"] == "Job 77 not found"


def test_job_list_newest_first_filter_and_pages(settings: Settings) -> None:
    with client(settings) as c:
        ids = [start(c) for _ in range(3)]
        for job_id in ids:
            wait_for(c, job_id)
        c.post(f"/api/v2/jobs/{ids[0]}/approve")
        page = c.get("/api/v2/jobs", params={"limit": 2}).json()
        assert [j["job_id"] for j in page["jobs"]] == [ids[2], ids[1]]
        assert page["total"] == 3
        second = c.get("/api/v2/jobs", params={"limit": 2, "offset": 2}).json()
        assert [j["job_id"] for j in second["jobs"]] == [ids[0]]
        ready = c.get("/api/v2/jobs", params={"status": "storyboard_ready"}).json()
        assert ready["total"] == 3
        assert c.get("/api/v2/jobs", params={"status": "bogus"}).status_code == 422
