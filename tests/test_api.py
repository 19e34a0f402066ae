"""The spec's FastAPI integration: POST /api/v2/generate, GET /api/v2/jobs/{job_id}."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from fastapi import BackgroundTasks

from storyboard import JobResponse, generate_storyboard_task, get_job
from storyboard.api.app import create_app
from storyboard.api.media import STATIC_DIR
from storyboard.config import Settings

from .live_server import serve
from .providers import ScriptedProvider


@contextmanager
def client(settings: Settings, provider: ScriptedProvider | None = None) -> Iterator[httpx.Client]:
    """The real app under uvicorn on loopback, and an HTTP client for it. With ``provider``,
    jobs run as the spec's BackgroundTasks but draw with that provider."""

    def dispatch(job_id: int, tasks: BackgroundTasks) -> None:
        tasks.add_task(generate_storyboard_task, job_id, settings=settings, provider=provider)

    app = create_app(settings, dispatch=dispatch if provider else None)
    with serve(app) as base, httpx.Client(base_url=base, timeout=30) as c:
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
    assert job.json()["video_url"] == ""  # as the spec's get_job_status returns it
    assert set(job.json()) >= {"job_id", "status", "progress", "storyboard", "video_url",
                               "estimated_cost", "created_at", "updated_at", "approved",
                               "error_message"}


def test_unknown_job_is_404(settings: Settings) -> None:
    with client(settings) as c:
        response = c.get("/api/v2/jobs/424242")
    assert response.status_code == 404
    assert response.json() == {"detail": "Job not found"}


def test_bad_input_is_422_naming_the_field_and_writes_nothing(settings: Settings) -> None:
    cases = [
        ({"prompt": "", "duration": 30}, "prompt"),
        ({"prompt": "x" * 2001}, "prompt"),
        ({"prompt": "ok", "duration": 4}, "duration"),
        ({"prompt": "ok", "duration": 301}, "duration"),
        ({"prompt": "ok", "aspect_ratio": "2:1"}, "aspect_ratio"),
        ({"prompt": "   "}, "prompt"),
        ({"prompt": "a\x00b"}, "prompt"),  # PostgreSQL cannot store it: refused at the edge
        ({"prompt": "ok", "style": "\x00"}, "style"),
    ]
    with client(settings) as c:
        for body, field in cases:
            response = c.post("/api/v2/generate", json=body)
            assert response.status_code == 422, body
            detail = response.json()["detail"]
            assert any(d["loc"][-1] == field for d in detail), detail
            assert all("input" not in d for d in detail)  # a 2 MB prompt is not sent back
            assert not any(d["msg"].startswith("Value error") for d in detail), detail
        # A lone surrogate is valid JSON but no valid text: refused, not a 500 while answering.
        for raw in ('{"prompt": "\\ud800"}', '{"\\ud800": 1, "prompt": "ok"}'):
            response = c.post("/api/v2/generate", content=raw,
                              headers={"content-type": "application/json"})
            assert response.status_code == 422, raw
            assert response.json()["detail"][0]["loc"][0] == "body"
        # The id column is a 32-bit integer on PostgreSQL: larger ids are not ids.
        for path in ("/api/v2/jobs/2147483648", "/api/v2/jobs/3000000000/cancel"):
            response = c.get(path) if "cancel" not in path else c.post(path)
            assert response.status_code == 422, path
    assert get_job(1) is None


def test_aspect_ratio_and_seed_reach_every_image_request(settings: Settings) -> None:
    provider = ScriptedProvider()
    with client(settings, provider) as c:
        job_id = c.post("/api/v2/generate", json={"prompt": "A robot exploring Mars",
                                                  "duration": 15, "aspect_ratio": "9:16",
                                                  "seed": 7}).json()["job_id"]
        job = wait_final(c, job_id).json()
        default = c.post("/api/v2/generate", json={"prompt": "A robot exploring Mars",
                                                   "duration": 15}).json()["job_id"]
        defaults = wait_final(c, default).json()
    assert job["parameters"] == {"prompt": "A robot exploring Mars", "duration": 15,
                                 "style": "cinematic", "aspect_ratio": "9:16", "seed": 7,
                                 "planner": "auto", "review_plan": False, "webhook_url": None,
                                 "webhook_events": ["completed"], "max_cost": None,
                                 "cache": True}
    first, second = provider.calls[:3], provider.calls[3:]
    assert {r.aspect_ratio for r in first} == {"9:16"}
    # One seed per job, offset per scene: repeatable, yet the frames differ.
    assert sorted((r.scene.scene_number, r.seed) for r in first  # type: ignore[union-attr]
                  ) == [(1, 7), (2, 8), (3, 9)]
    assert defaults["parameters"]["aspect_ratio"] == "16:9"
    assert {r.aspect_ratio for r in second} == {"16:9"}
    # Without a seed of its own, the job draws a base seed: the frames still differ.
    seeds = sorted((r.scene.scene_number, r.seed) for r in second)  # type: ignore[union-attr]
    base = seeds[0][1]
    assert base is not None and seeds == [(1, base), (2, base + 1), (3, base + 2)]


def test_openapi_documents_every_endpoint(settings: Settings) -> None:
    with client(settings) as c:
        docs = c.get("/docs")
        schema = c.get("/openapi.json").json()
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert set(schema["paths"]) >= {
        "/api/v2/generate", "/api/v2/jobs", "/api/v2/jobs/{job_id}",
        "/api/v2/jobs/{job_id}/events", "/api/v2/jobs/{job_id}/scenes/{scene_number}/regenerate",
        "/api/v2/jobs/{job_id}/approve", "/api/v2/jobs/{job_id}/cancel",
        "/api/v2/jobs/{job_id}/export.pdf", "/api/v2/jobs/{job_id}/export.zip"}
    request = schema["components"]["schemas"]["GenerationRequest"]["properties"]
    assert request["aspect_ratio"]["enum"] == ["16:9", "9:16", "1:1", "4:3"]
    assert request["aspect_ratio"]["default"] == "16:9"


def test_studio_is_served_and_references_nothing_outside_the_app(settings: Settings) -> None:
    # The studio: a page, a style sheet and ES modules (studio.js imports the rest).
    modules = sorted(p.name for p in STATIC_DIR.iterdir() if p.suffix == ".js")
    assert {p.name for p in STATIC_DIR.iterdir() if p.suffix != ".js"} == {"index.html",
                                                                           "studio.css"}
    assert "studio.js" in modules
    with client(settings) as c:
        page = c.get("/")
        assets = {name: c.get(f"/static/{name}") for name in ("studio.css", *modules)}
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert all(r.status_code == 200 for r in assets.values())
    for name in modules:
        assert assets[name].headers["content-type"].split(";")[0] in (
            "text/javascript", "application/javascript")
        # Every module a module imports is one the app serves.
        imported = re.findall(r'from "\./([\w-]+\.js)"', assets[name].text)
        assert set(imported) <= set(modules), (name, imported)
    for text in (page.text, *(r.text for r in assets.values())):
        # The SVG namespace in the inline favicon is a name, never fetched.
        urls = set(re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"')]*", text))
        assert urls <= {"http://www.w3.org/2000/svg"}, urls
        assert "@import" not in text and "<script src=\"http" not in text


def test_bodies_and_ids_are_strict_and_name_the_field(settings: Settings) -> None:
    """True is not a seed, "30" is not a duration, "+1" is not a job id: each a 422 naming
    the field, and nothing written."""
    with client(settings) as c:
        for body, field in (({"prompt": "x", "seed": True}, "seed"),
                            ({"prompt": "x", "duration": "30"}, "duration"),
                            ({"prompt": "x", "duration": 30.5}, "duration"),
                            ({"prompt": "x", "review_plan": "yes"}, "review_plan")):
            response = c.post("/api/v2/generate", json=body)
            assert response.status_code == 422, body
            assert response.json()["detail"][0]["loc"] == ["body", field]
        assert c.get("/api/v2/jobs").json()["total"] == 0
        job_id = c.post("/api/v2/generate", json={"prompt": "x", "duration": 15}).json()[
            "job_id"]
        assert c.get(f"/api/v2/jobs/{job_id}").status_code == 200
        for path in (f"/api/v2/jobs/+{job_id}", f"/api/v2/jobs/%20{job_id}",
                     f"/api/v2/jobs/0{job_id}", f"/api/v2/jobs/{job_id}_0",
                     f"/api/v2/jobs/{job_id}/scenes/+1/regenerate"):
            method = c.post if path.endswith("regenerate") else c.get
            response = method(path)
            assert response.status_code == 422, path
            where = response.json()["detail"][0]["loc"]
            assert where[0] == "path" and where[1] in ("job_id", "scene_number"), path
        rerender = c.post(f"/api/v2/jobs/{job_id}/rerender", json={"scenes": [True]})
        assert rerender.status_code == 422


def test_media_answers_404_for_any_path_it_cannot_serve(settings: Settings) -> None:
    with client(settings) as c:
        for path in ("/media/" + "a" * 5000 + ".png", "/media/%ff%fe.png", "/media/%ed%a0%80.png",
                     "/media/jobs/1/" + "b" * 300 + "/x.png", "/media/..%2f..%2fetc%2fpasswd",
                     "/media/" + "d/" * 3000 + "x.png"):
            response = c.get(path)
            assert response.status_code == 404, path
            assert len(response.text) < 500  # the path is not echoed whole
