"""The review loop over real HTTP: events, regenerate, approve, cancel, media."""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from PIL import Image
from pypdf import PdfReader

from storyboard import generate_storyboard_task, get_job
from storyboard.api.app import create_app
from storyboard.config import Settings, get_settings
from storyboard.db import get_engine, get_job_row, update_job
from storyboard.db.models import utcnow
from storyboard.errors import PermanentImageError, RetryableImageError
from storyboard.jobs.review import run_holds
from storyboard.storage import job_dir, save_image
from tests.fake_replicate import (  # the fixtures register by import, under their own names
    FAKE_API_KEY,
    FakeReplicate,
    fake_replicate_fixture,  # noqa: F401
    fake_replicate_server_fixture,  # noqa: F401
)

from .live_server import serve
from .providers import ScriptedProvider

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


class ThreadDispatch:
    """Runs each dispatched job with the real task in a thread of its own, as BackgroundTasks
    does, but joinable: a test waits for a run to end instead of guessing with sleeps."""

    def __init__(self, settings: Settings, provider: ScriptedProvider | None = None) -> None:
        self.settings = settings
        self.provider = provider
        self.threads: list[threading.Thread] = []

    def __call__(self, job_id: int, _tasks: object) -> None:
        thread = threading.Thread(target=generate_storyboard_task, args=(job_id,), daemon=True,
                                  kwargs={"settings": self.settings, "provider": self.provider})
        self.threads.append(thread)
        thread.start()

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=30)
            assert not thread.is_alive(), "a job run did not stop"


def files_of(settings: Settings, job_id: int) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in job_dir(settings.media_dir, job_id).iterdir()}


def wait_until(check: Any, what: str) -> None:
    deadline = time.monotonic() + 30
    while not check():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.01)


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
        assert approved["approved"] is True and approved["approved_at"] is not None
        response = c.post(f"/api/v2/jobs/{job_id}/scenes/2/regenerate",
                          json={"description": "The robot finds water ice"})
        assert response.status_code == 202
        # The board changed: review again.
        assert response.json()["approved"] is False and response.json()["approved_at"] is None
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


def test_approve_only_when_ready(settings: Settings) -> None:
    provider = ScriptedProvider(script={1: [30.0]})  # the first image hangs until cancelled
    runs = ThreadDispatch(settings, provider)
    with client(settings, dispatch=runs) as c:
        running = start(c)
        wait_until(lambda: provider.calls, "scene 1 started")
        refused = c.post(f"/api/v2/jobs/{running}/approve")
        c.post(f"/api/v2/jobs/{running}/cancel")
        runs.join()
        cancelled = c.post(f"/api/v2/jobs/{running}/approve")
        ready = start(c)
        wait_for(c, ready)
        approved = c.post(f"/api/v2/jobs/{ready}/approve")
        shown = c.get(f"/api/v2/jobs/{ready}").json()
        again = c.post(f"/api/v2/jobs/{ready}/approve")
    assert refused.status_code == 409
    assert refused.json()["detail"] == (f"Job {running} is generating_storyboard; only a "
                                        "storyboard_ready job can be approved")
    assert cancelled.status_code == 409 and "is cancelled" in cancelled.json()["detail"]
    assert approved.status_code == 200
    assert shown["approved"] is True and shown["approved_at"] is not None
    assert shown["status"] == "storyboard_ready"
    # Approving twice is harmless and keeps the first approval's time.
    assert again.status_code == 200 and again.json()["approved_at"] == shown["approved_at"]


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
        # A finished job: just its final event, and the stream ends.
        finished = c.get(f"/api/v2/jobs/{job_id}/events")
    assert events[-1][0] == "done" and events[-1][1]["status"] == "storyboard_ready"
    assert [n for n, _ in events].count("done") == 1
    progress = [e for n, e in events if n == "progress"]
    completed = [e["progress"]["scenes_completed"] for e in progress]
    assert len(set(completed)) >= 3 and completed == sorted(completed)
    assert any("Generating image for scene" in e["progress"]["message"] for e in progress)
    assert finished.status_code == 200
    assert [line for line in finished.text.splitlines() if line.startswith("event:")] == [
        "event: done"]


def test_media_served_with_types_and_traversal_refused(settings: Settings) -> None:
    secret = settings.data_dir / "secret.txt"
    with client(settings) as c:
        job_id = start(c)
        body = wait_for(c, job_id)
        url = body["storyboard"][0]["image_url"]
        image = c.get(url)
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"
        assert image.content[:4] == b"\x89PNG"
        for fmt, extension, content_type in [("WEBP", "webp", "image/webp"),
                                             ("JPEG", "jpg", "image/jpeg")]:
            buffer = io.BytesIO()
            Image.new("RGB", (8, 8), "white").save(buffer, fmt)
            save_image(settings.media_dir, job_id, 9, buffer.getvalue(), extension)
            stored = c.get(f"/media/jobs/{job_id}/scene-09-v1.{extension}")
            assert stored.status_code == 200, extension
            assert stored.headers["content-type"] == content_type
            assert stored.content == buffer.getvalue()
        secret.write_text("no")
        for bad in ("/media/../secret.txt", "/media/%2e%2e/secret.txt",
                    "/media/..%2fsecret.txt", "/media/jobs/1/nope.png", "/media/storyboard.db",
                    "/media/../storyboard.db", "/media/%2e%2e/%2e%2e/etc/passwd",
                    "/media/%00", f"/media/jobs/{job_id}/scene-01-v1.png%00.png"):
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
            assert response.json()["detail"] == "Job not found"


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
    # The filter really filters: a cancelled job among ready ones.
    with client(settings, dispatch=lambda job_id, tasks: None) as c:  # jobs stay pending
        waiting = start(c)
        assert c.post(f"/api/v2/jobs/{waiting}/cancel").json()["status"] == "cancelled"
        cancelled = c.get("/api/v2/jobs", params={"status": "cancelled"}).json()
        assert [j["job_id"] for j in cancelled["jobs"]] == [waiting] and cancelled["total"] == 1
        ready = c.get("/api/v2/jobs", params={"status": "storyboard_ready"}).json()
        assert [j["job_id"] for j in ready["jobs"]] == [ids[2], ids[1], ids[0]]
        assert c.get("/api/v2/jobs", params={"status": "pending"}).json()["total"] == 0


def test_regenerate_with_an_edited_image_prompt_leaves_the_other_scenes_byte_identical(
    settings: Settings,
) -> None:
    provider = ScriptedProvider()
    runs = ThreadDispatch(settings, provider)
    with client(settings, dispatch=runs) as c:
        job_id = start(c)
        before = wait_for(c, job_id)
        runs.join()
        files_before = files_of(settings, job_id)
        image_prompt = "Extreme close-up of a cracked rover wheel in red dust, cinematic"
        response = c.post(f"/api/v2/jobs/{job_id}/scenes/2/regenerate",
                          json={"image_prompt": image_prompt})
        assert response.status_code == 202, response.text
        after = wait_for(c, job_id)
        runs.join()
    files_after = files_of(settings, job_id)

    old, new = before["storyboard"], after["storyboard"]
    assert new[0] == old[0] and new[2] == old[2]
    scene = new[1]
    assert scene["scene"]["image_prompt"] == image_prompt
    assert scene["scene"]["description"] == old[1]["scene"]["description"]  # not asked to change
    # One new provider call, for scene 2, with exactly the edited prompt.
    assert [(r.scene.scene_number, r.prompt) for r in provider.calls[3:]  # type: ignore[union-attr]
            ] == [(2, image_prompt)]
    (version,) = scene["versions"]
    assert version["image_url"] == old[1]["image_url"]
    assert version["image_prompt"] == old[1]["scene"]["image_prompt"]
    assert version["description"] == old[1]["scene"]["description"]
    # Every earlier file, the replaced image included, is still there byte for byte; the only
    # new file is scene 2's second version.
    assert {name: files_after[name] for name in files_before} == files_before
    assert set(files_after) - set(files_before) == {"scene-02-v2.png"}
    assert scene["image_url"].endswith("/scene-02-v2.png")


def test_regenerate_with_description_and_image_prompt_uses_both(settings: Settings) -> None:
    provider = ScriptedProvider()
    runs = ThreadDispatch(settings, provider)
    with client(settings, dispatch=runs) as c:
        job_id = start(c)
        wait_for(c, job_id)
        runs.join()
        c.post(f"/api/v2/jobs/{job_id}/scenes/1/regenerate",
               json={"description": "Dawn over Olympus Mons", "image_prompt": "Wide shot, dawn"})
        after = wait_for(c, job_id)
        runs.join()
    assert after["storyboard"][0]["scene"]["description"] == "Dawn over Olympus Mons"
    assert after["storyboard"][0]["scene"]["image_prompt"] == "Wide shot, dawn"
    assert provider.calls[-1].prompt == "Wide shot, dawn"


def test_regenerate_retries_reports_progress_and_counts_cost_like_a_job(
    settings: Settings,
) -> None:
    # Scene 2: fine the first time; when redrawn, one transient failure, then success.
    provider = ScriptedProvider(script={2: [None, RetryableImageError("upstream 503"), None]})
    runs = ThreadDispatch(settings, provider)
    with client(settings, dispatch=runs) as c:
        job_id = start(c)
        wait_for(c, job_id)
        runs.join()
        queued = c.post(f"/api/v2/jobs/{job_id}/scenes/2/regenerate").json()
        after = wait_for(c, job_id)
        runs.join()
    assert queued["status"] == "generating_storyboard"
    assert queued["progress"]["message"] == "Regenerating scene 2/3"
    assert queued["progress"]["scenes_completed"] == 2 and queued["progress"]["scenes_total"] == 3
    assert provider.attempts(2) == 3 and provider.attempts(1) == provider.attempts(3) == 1
    assert after["status"] == "storyboard_ready"
    assert after["progress"]["message"] == "Storyboard ready"
    assert after["storyboard"][1]["generation_status"] == "completed"
    assert after["actual_cost"] == pytest.approx(0.012)  # the failed attempt cost nothing


def test_a_regeneration_that_fails_keeps_the_earlier_image_and_says_why(
    settings: Settings,
) -> None:
    provider = ScriptedProvider(script={3: [None, PermanentImageError("NSFW content detected")]})
    runs = ThreadDispatch(settings, provider)
    with client(settings, dispatch=runs) as c:
        job_id = start(c)
        before = wait_for(c, job_id)
        runs.join()
        c.post(f"/api/v2/jobs/{job_id}/scenes/3/regenerate")
        after = wait_for(c, job_id)
        runs.join()
    scene = after["storyboard"][2]
    assert scene["generation_status"] == "failed" and scene["error"] == "NSFW content detected"
    assert scene["image_url"] is None
    assert scene["versions"][0]["image_url"] == before["storyboard"][2]["image_url"]
    assert after["status"] == "storyboard_ready"
    assert after["progress"]["message"] == "Storyboard ready (1 scenes failed)"


def test_regenerate_is_refused_with_reasons(settings: Settings) -> None:
    provider = ScriptedProvider(script={1: [30.0]})  # the first image hangs until cancelled
    runs = ThreadDispatch(settings, provider)
    with client(settings, dispatch=runs) as c:
        job_id = start(c)
        wait_until(lambda: provider.calls, "scene 1 started")
        busy = c.post(f"/api/v2/jobs/{job_id}/scenes/1/regenerate")
        assert busy.status_code == 409
        assert busy.json()["detail"].startswith(f"Job {job_id} is generating_storyboard; ")
        c.post(f"/api/v2/jobs/{job_id}/cancel")
        runs.join()

        ready = start(c)
        wait_for(c, ready)
        runs.join()
        too_far = c.post(f"/api/v2/jobs/{ready}/scenes/4/regenerate")
        assert too_far.status_code == 422
        assert too_far.json()["detail"] == [{"loc": ["path", "scene_number"],
                                             "msg": "must be between 1 and 3",
                                             "type": "value_error"}]
        for bad in ({"description": ""}, {"image_prompt": "x" * 2301}, {"seed": 3},
                    {"description": "   "}, {"image_prompt": " \n "}, {"description": "a\x00"}):
            response = c.post(f"/api/v2/jobs/{ready}/scenes/1/regenerate", json=bad)
            assert response.status_code == 422, bad
        assert c.post(f"/api/v2/jobs/{ready}/scenes/11/regenerate").status_code == 422
        assert c.get(f"/api/v2/jobs/{ready}").json()["status"] == "storyboard_ready"


def test_regenerate_starts_even_while_the_last_run_still_holds_its_lease(
    settings: Settings,
) -> None:
    # A run writes its final status, then gives its lease back; a regeneration that lands in
    # between must still be run (the new run could not claim the job before the fix).
    runs = ThreadDispatch(settings, ScriptedProvider())
    with client(settings, dispatch=runs) as c:
        job_id = start(c)
        wait_for(c, job_id)
        runs.join()
        update_job(get_engine(settings), job_id, lease_owner="other-host:1:finishing",
                   lease_expires_at=utcnow() + timedelta(seconds=60))
        c.post(f"/api/v2/jobs/{job_id}/scenes/2/regenerate")
        after = wait_for(c, job_id)
        runs.join()
    assert after["status"] == "storyboard_ready"
    assert after["storyboard"][1]["image_url"].endswith("/scene-02-v2.png")


def cancel_mid_run(c: httpx.Client, provider: ScriptedProvider, runs: ThreadDispatch) -> int:
    """Start a 6-scene job drawn one scene at a time whose scene 2 hangs, cancel it while scene
    2 is being drawn, and wait for its run to end. Returns the job id."""
    job_id = start(c, duration=30)
    wait_until(lambda: len(provider.calls) == 2, "scene 2 started")
    response = c.post(f"/api/v2/jobs/{job_id}/cancel")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    runs.join()
    return job_id


@pytest.fixture
def scene_two_hangs(monkeypatch: pytest.MonkeyPatch) -> tuple[Settings, ScriptedProvider,
                                                               ThreadDispatch]:
    """Scenes one at a time; scene 2's first image hangs until cancelled."""
    monkeypatch.setenv("STORYBOARD_SCENE_CONCURRENCY", "1")
    settings = get_settings()
    provider = ScriptedProvider(script={2: [30.0]})
    return settings, provider, ThreadDispatch(settings, provider)


def test_cancel_stops_a_running_job_and_makes_no_further_images(
    scene_two_hangs: tuple[Settings, ScriptedProvider, ThreadDispatch],
) -> None:
    settings, provider, runs = scene_two_hangs
    with client(settings, dispatch=runs) as c:
        job_id = cancel_mid_run(c, provider, runs)
        final = c.get(f"/api/v2/jobs/{job_id}").json()
        again = c.post(f"/api/v2/jobs/{job_id}/cancel")
        approve = c.post(f"/api/v2/jobs/{job_id}/approve")
    # Two calls (scene 1 done, scene 2 in flight) and no more; the one in flight was cancelled.
    assert [r.scene.scene_number for r in provider.calls] == [1, 2]  # type: ignore[union-attr]
    assert provider.cancelled == [2]
    assert final["status"] == "cancelled" and final["progress"]["message"] == "Cancelled"
    assert final["error_message"] == "Cancelled on request"
    assert [e["generation_status"] for e in final["storyboard"]] == [
        "completed", "pending", "pending", "pending", "pending", "pending"]
    stored = json.loads(get_job(job_id, settings=settings)["storyboard_data"])
    assert [e["generation_status"] for e in stored] == [  # the row too, not only the API view
        "completed", "pending", "pending", "pending", "pending", "pending"]
    assert final["actual_cost"] == pytest.approx(0.003)
    assert set(files_of(settings, job_id)) == {"scene-01-v1.png"}
    assert again.status_code == 409 and "already cancelled" in again.json()["detail"]
    assert approve.status_code == 409


def test_a_cancelled_job_can_have_a_frame_drawn_without_resuming_the_rest(
    scene_two_hangs: tuple[Settings, ScriptedProvider, ThreadDispatch],
) -> None:
    settings, provider, runs = scene_two_hangs
    with client(settings, dispatch=runs) as c:
        job_id = cancel_mid_run(c, provider, runs)
        before = c.get(f"/api/v2/jobs/{job_id}").json()
        response = c.post(f"/api/v2/jobs/{job_id}/scenes/2/regenerate")
        assert response.status_code == 202, response.text
        after = wait_for(c, job_id)
        runs.join()
    assert [r.scene.scene_number for r in provider.calls] == [1, 2, 2]  # type: ignore[union-attr]
    assert after["status"] == "storyboard_ready"
    entries = after["storyboard"]
    assert entries[0] == before["storyboard"][0]
    assert entries[1]["generation_status"] == "completed"
    for entry in entries[2:]:
        assert entry["generation_status"] == "failed"
        assert entry["error"] == "Not drawn: the job was cancelled before this frame was made"
    assert after["progress"]["message"] == "Storyboard ready (4 scenes failed)"
    assert after["actual_cost"] == pytest.approx(0.006)


def test_a_cancelled_job_still_stopping_is_not_regenerated_yet(settings: Settings) -> None:
    with client(settings, dispatch=lambda job_id, tasks: None) as c:
        job_id = start(c)
        steps = json.dumps([{"scene": {"scene_number": 1, "description": "d", "duration": 5,
                                       "image_prompt": "p"}, "generation_status": "generating"}])
        # A run that has not yet noticed the cancel: it still holds a live lease.
        update_job(get_engine(settings), job_id, status="cancelled", storyboard_data=steps,
                   lease_owner="host:1:running", lease_expires_at=utcnow() + timedelta(seconds=60))
        response = c.post(f"/api/v2/jobs/{job_id}/scenes/1/regenerate")
        shown = c.get(f"/api/v2/jobs/{job_id}").json()
    assert response.status_code == 409
    assert response.json()["detail"] == f"Job {job_id} is still stopping; try again in a moment"
    # Nothing is drawing it any more: the API does not call it "generating".
    assert shown["storyboard"][0]["generation_status"] == "pending"


def test_cancel_on_replicate_cancels_the_predictions_in_flight(
    fake_replicate: FakeReplicate,
) -> None:
    fake_replicate.wait_cap = 0  # creations answer at once; the predictions then never finish
    for _ in range(3):
        fake_replicate.plan("hang")
    settings = get_settings(image_provider="replicate", replicate_api_key=FAKE_API_KEY,
                            replicate_base_url=fake_replicate.base_url,
                            replicate_poll_interval=0.02, replicate_wait=1)
    runs = ThreadDispatch(settings)  # the provider comes from the settings, as in production
    with client(settings, dispatch=runs) as c:
        job_id = start(c)  # 3 scenes, all drawn at once
        wait_until(lambda: len(fake_replicate.creations) == 3, "three predictions created")
        wait_until(lambda: all(e.get("prediction_id") for e in json.loads(
            (get_job(job_id, settings=settings) or {}).get("storyboard_data") or "[]")),
            "the prediction ids saved")
        c.post(f"/api/v2/jobs/{job_id}/cancel")
        runs.join()
        final = c.get(f"/api/v2/jobs/{job_id}").json()
    created = sorted(fake_replicate.predictions)
    assert len(created) == 3 and len(fake_replicate.creations) == 3  # nothing new after cancel
    assert sorted(fake_replicate.cancels) == created
    assert all(fake_replicate.predictions[p].status == "canceled" for p in created)
    assert final["status"] == "cancelled" and final["actual_cost"] == 0


def test_exports_over_http(settings: Settings) -> None:
    with client(settings) as c:
        job_id = start(c, duration=30)
        wait_for(c, job_id)
        pdf = c.get(f"/api/v2/jobs/{job_id}/export.pdf")
        archive = c.get(f"/api/v2/jobs/{job_id}/export.zip")
        missing = c.get("/api/v2/jobs/99/export.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == f'attachment; filename="storyboard-{job_id}.pdf"'
    reader = PdfReader(io.BytesIO(pdf.content))
    assert len(reader.pages) == 1 and len(reader.pages[0].images) == 6  # six frames on a page
    text = reader.pages[0].extract_text()
    assert "A robot exploring Mars" in text and all(f"Scene {n}" in text for n in range(1, 7))
    assert archive.status_code == 200 and archive.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(archive.content)).namelist()
    assert [n for n in names if n.startswith("scene-")] == [f"scene-0{n}.png" for n in range(1, 7)]
    assert "storyboard.json" in names
    assert missing.status_code == 404 and missing.json() == {"detail": "Job not found"}


def read_events(response: httpx.Response, on_event: Any = None) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    """The (name, JobResponse) events of an SSE response, calling ``on_event`` after each."""
    events: list[tuple[str, dict]] = []  # type: ignore[type-arg]
    name = None
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: ") and name:
            events.append((name, json.loads(line[6:])))
            if on_event:
                on_event(events[-1])
    return events


def test_events_after_a_cancel_end_once_the_run_has_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STORYBOARD_SCENE_CONCURRENCY", "1")
    monkeypatch.setenv("STORYBOARD_EVENTS_INTERVAL", "0.02")
    # The run looks for a cancel far less often than the stream looks at the job, so the
    # stream sees "cancelled" well before the run has stopped.
    monkeypatch.setenv("STORYBOARD_STATUS_POLL_INTERVAL", "0.5")
    settings = get_settings()
    provider = ScriptedProvider(script={2: [30.0]})
    runs = ThreadDispatch(settings, provider)
    with client(settings, dispatch=runs) as c:
        job_id = start(c, duration=30)
        wait_until(lambda: len(provider.calls) == 2, "scene 2 started")
        cancelled: list[dict] = []  # type: ignore[type-arg]

        def cancel_once(event: tuple[str, dict]) -> None:  # type: ignore[type-arg]
            if not cancelled:
                cancelled.append(httpx.post(c.base_url.join(f"/api/v2/jobs/{job_id}/cancel")).json())

        with c.stream("GET", f"/api/v2/jobs/{job_id}/events") as response:
            events = read_events(response, cancel_once)
        row = get_job(job_id, settings=settings)
        runs.join()
    assert cancelled[0]["status"] == "cancelled"
    name, last = events[-1]
    assert name == "done" and [n for n, _ in events].count("done") == 1
    # The done event came after the run let go, so it holds what the run had made and paid.
    assert row is not None and row["lease_owner"] is None
    assert last["status"] == "cancelled" and last["actual_cost"] == pytest.approx(0.003)
    assert [e["generation_status"] for e in last["storyboard"]] == ["completed", *["pending"] * 5]


def test_cancel_stops_the_in_process_worker_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """`storyboard serve` runs jobs in-process: a cancel reaches the running job directly,
    without waiting for its next status poll (a minute here)."""
    monkeypatch.setenv("STORYBOARD_SKETCH_DELAY", "20")  # every frame takes 20 s
    monkeypatch.setenv("STORYBOARD_STATUS_POLL_INTERVAL", "60")
    monkeypatch.setenv("STORYBOARD_LEASE_SECONDS", "600")
    settings = get_settings()
    engine = get_engine(settings)
    with client(settings, embedded_worker=True) as c:
        job_id = start(c)
        wait_for(c, job_id, ("generating_storyboard",))
        assert c.post(f"/api/v2/jobs/{job_id}/cancel").status_code == 200
        # The run lets go of the job long before a poll (60 s) or a frame (20 s) could end.
        wait_until(lambda: not run_holds(get_job_row(engine, job_id)), "the run stopped")
        final = c.get(f"/api/v2/jobs/{job_id}").json()
    assert final["status"] == "cancelled"
    assert [e["generation_status"] for e in final["storyboard"]] == ["pending"] * 3
    folder = job_dir(settings.media_dir, job_id)
    assert not folder.exists() or files_of(settings, job_id) == {}  # no frame was drawn


def test_stored_images_get_the_mode_of_any_new_file(settings: Settings) -> None:
    """Not mkstemp's 0600: a web server running as another user must be able to serve them."""
    import os
    import stat

    path = save_image(settings.media_dir, 1, 1, b"not checked here", "png")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
