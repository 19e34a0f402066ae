"""Many users on one server: tokens, owners, share links, signed links, limits.

Two owners (alice, bob) and an admin against one real server on loopback: every job endpoint
tried with the wrong owner's token, a revoked token, no token, a bad token, a share link on a
write it does not allow, and a signed link; each answer checked.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from storyboard.access import create_token, revoke_token
from storyboard.access.signing import job_access
from storyboard.api.app import create_app
from storyboard.config import Settings, get_settings
from storyboard.db import get_engine
from storyboard.jobs import save_generated_video

from .live_server import serve
from .services import REDIS, REDIS_URL, require

PROMPT = "A robot exploring Mars"


@dataclass
class Team:
    c: httpx.Client
    settings: Settings
    alice: dict[str, str]
    bob: dict[str, str]
    admin: dict[str, str]
    revoked: dict[str, str]
    alice_job: int
    bob_job: int
    legacy_job: int

    def wait(self, job_id: int, headers: dict[str, str]) -> dict[str, Any]:
        deadline = time.monotonic() + 30
        while True:
            job = self.c.get(f"/api/v2/jobs/{job_id}", headers=headers).json()
            if job["status"] in ("storyboard_ready", "failed", "cancelled"):
                return job
            assert time.monotonic() < deadline, job
            time.sleep(0.05)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def team(settings: Settings) -> Iterator[Team]:
    engine = get_engine(settings)
    # A job made in single-user mode, before any token: nobody's.
    legacy = save_generated_video(PROMPT, "", "v2", {"duration": 15}, "storyboard_ready")
    tokens = {name: create_token(engine, name, admin=name == "root")[0]
              for name in ("alice", "bob", "root", "mallory")}
    assert revoke_token(engine, "mallory")
    with serve(create_app(settings)) as base, httpx.Client(base_url=base, timeout=30) as c:
        ids = []
        for name in ("alice", "bob"):
            response = c.post("/api/v2/generate", headers=bearer(tokens[name]),
                              json={"prompt": PROMPT, "duration": 15})
            assert response.status_code == 200, response.text
            ids.append(response.json()["job_id"])
        t = Team(c, settings, bearer(tokens["alice"]), bearer(tokens["bob"]),
                 bearer(tokens["root"]), bearer(tokens["mallory"]), ids[0], ids[1], legacy)
        for job_id, who in ((ids[0], t.alice), (ids[1], t.bob)):
            assert t.wait(job_id, who)["status"] == "storyboard_ready"
        yield t


def endpoints(job: int, image: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    """Every endpoint that acts on one job: (method, path, JSON body)."""
    j = f"/api/v2/jobs/{job}"
    return [
        ("GET", j, None), ("GET", f"{j}/costs", None), ("GET", f"{j}/events", None),
        ("GET", f"{j}/export.pdf", None), ("GET", f"{j}/export.zip", None),
        ("GET", f"{j}/export.csv", None), ("GET", f"{j}/export.mp4", None),
        ("GET", f"{j}/comments", None), ("POST", f"{j}/comments", {"text": "Nice"}),
        ("POST", f"{j}/scenes/1/regenerate", None), ("PATCH", f"{j}/plan", {"title": "X"}),
        ("POST", f"{j}/rerender", {"scenes": [1]}), ("POST", f"{j}/render", None),
        ("POST", f"{j}/approve", None), ("POST", f"{j}/cancel", None),
        ("POST", f"{j}/request-changes", {"text": "Redo it"}),
        ("POST", f"{j}/share", {}), ("GET", f"{j}/shares", None),
        ("DELETE", f"{j}/shares/1", None), ("GET", image, None),
    ]


def call(t: Team, method: str, path: str, body: dict[str, Any] | None,
         headers: dict[str, str] | None = None) -> httpx.Response:
    return t.c.request(method, path, json=body, headers=headers or {})


def image_of(t: Team, job_id: int, headers: dict[str, str]) -> str:
    job = t.c.get(f"/api/v2/jobs/{job_id}", headers=headers).json()
    url: str = job["storyboard"][0]["image_url"]
    assert "?access=" in url  # signed for <img> tags
    return url.split("?")[0]


def test_another_owners_job_is_not_found_and_strangers_are_refused(team: Team) -> None:
    t = team
    image = image_of(t, t.alice_job, t.alice)
    for method, path, body in endpoints(t.alice_job, image):
        answer = call(t, method, path, body, t.bob)
        assert answer.status_code == 404, (method, path, answer.status_code, answer.text)
        for headers in ({}, t.revoked, bearer("sb_not-a-token"), bearer("sh_nor-a-link"),
                        {"Authorization": "Basic YWxpY2U6c2VjcmV0"}):
            answer = call(t, method, path, body, headers)
            assert answer.status_code == 401, (method, path, headers, answer.status_code)
            assert answer.headers["www-authenticate"].startswith("Bearer")
    # A job made before tokens existed is nobody's: admins only.
    assert t.c.get(f"/api/v2/jobs/{t.legacy_job}", headers=t.alice).status_code == 404
    assert t.c.get(f"/api/v2/jobs/{t.legacy_job}", headers=t.admin).status_code == 200


def test_owners_list_their_own_jobs_and_admins_everyones(team: Team) -> None:
    t = team
    mine = t.c.get("/api/v2/jobs", headers=t.alice).json()
    assert [j["job_id"] for j in mine["jobs"]] == [t.alice_job] and mine["total"] == 1
    assert mine["jobs"][0]["owner"] == "alice"
    everyone = t.c.get("/api/v2/jobs", headers=t.admin).json()
    assert {j["job_id"] for j in everyone["jobs"]} == {t.alice_job, t.bob_job, t.legacy_job}
    assert t.c.get("/api/v2/jobs").status_code == 401
    assert t.c.get("/api/v2/planning").status_code == 401


def test_the_owner_and_an_admin_may_do_everything(team: Team) -> None:
    t = team
    image = image_of(t, t.alice_job, t.alice)
    for who in (t.alice, t.admin):
        for method, path, body in endpoints(t.alice_job, image):
            if path.endswith(("/regenerate", "/rerender", "/render", "/cancel")):
                continue  # state changes, tried below
            answer = call(t, method, path, body, who)
            assert answer.status_code in (200, 201, 204, 404, 409), (method, path, answer.text)
            if answer.status_code == 404:
                assert path.endswith("/shares/1")  # no such link yet: a plain 404
    redraw = t.c.post(f"/api/v2/jobs/{t.alice_job}/scenes/1/regenerate", headers=t.alice)
    assert redraw.status_code == 202
    assert t.wait(t.alice_job, t.alice)["status"] == "storyboard_ready"
    approved = t.c.post(f"/api/v2/jobs/{t.alice_job}/approve", headers=t.alice).json()
    assert approved["approved"] and approved["approved_by"] == "alice"


def test_a_share_link_reads_comments_and_approves_only_when_allowed(team: Team) -> None:
    t = team
    made = t.c.post(f"/api/v2/jobs/{t.alice_job}/share", headers=t.alice,
                    json={"label": "Client", "expires_in_hours": 24})
    assert made.status_code == 201
    link = made.json()
    assert link["url"] == f"/s#{link['token']}" and link["allow_approve"] is False
    share = bearer(link["token"])
    board = t.c.get(f"/api/v2/jobs/{t.alice_job}", headers=share)
    assert board.status_code == 200
    seen = board.json()
    assert seen["owner"] is None and seen["actual_cost"] is None  # the board, not the account
    assert "webhook_url" not in (seen["parameters"] or {})
    assert t.c.get(seen["storyboard"][0]["image_url"]).status_code == 200  # signed: no header
    for method, path, body in endpoints(t.alice_job, image_of(t, t.alice_job, t.alice)):
        answer = call(t, method, path, body, share)
        reads = method == "GET" and not path.endswith(("/costs", "/shares"))
        if reads or path.endswith("/comments"):
            assert answer.status_code in (200, 201), (method, path, answer.text)
        else:
            assert answer.status_code == 403, (method, path, answer.status_code, answer.text)
    for method, path, body in endpoints(t.bob_job, image_of(t, t.bob_job, t.bob)):
        assert call(t, method, path, body, share).status_code == 404, path
    comments = t.c.get(f"/api/v2/jobs/{t.alice_job}/comments", headers=t.alice).json()
    assert [(c["author"], c["text"]) for c in comments["comments"]] == [("Client", "Nice")]
    # A link that allows approval: the reviewer's own name is recorded.
    approver = bearer(t.c.post(f"/api/v2/jobs/{t.alice_job}/share", headers=t.alice,
                               json={"allow_approve": True}).json()["token"])
    ok = t.c.post(f"/api/v2/jobs/{t.alice_job}/approve", headers=approver, json={"name": "Dana"})
    assert ok.status_code == 200 and ok.json()["approved_by"] == "Dana (share link)"
    changes = t.c.post(f"/api/v2/jobs/{t.alice_job}/request-changes", headers=approver,
                       json={"text": "Darker sky", "scene_number": 2, "author": "Dana"})
    assert changes.status_code == 201 and changes.json()["kind"] == "changes"
    after = t.c.get(f"/api/v2/jobs/{t.alice_job}", headers=t.alice).json()
    assert after["approved"] is False and after["approved_by"] is None
    # Revoked, the link opens nothing.
    assert t.c.delete(f"/api/v2/jobs/{t.alice_job}/shares/{link['id']}",
                      headers=t.alice).status_code == 204
    assert t.c.get(f"/api/v2/jobs/{t.alice_job}", headers=share).status_code == 401
    listed = t.c.get(f"/api/v2/jobs/{t.alice_job}/shares", headers=t.alice).json()["shares"]
    assert [s["active"] for s in listed] == [False, True] and "token" not in listed[0]


def test_an_expired_share_link_opens_nothing(team: Team) -> None:
    t = team
    from sqlalchemy import update

    from storyboard.db.models import ShareLink, utcnow

    token = t.c.post(f"/api/v2/jobs/{t.alice_job}/share", headers=t.alice,
                     json={"expires_in_hours": 1}).json()["token"]
    with get_engine(t.settings).begin() as conn:
        conn.execute(update(ShareLink).values(expires_at=utcnow()))
    assert t.c.get(f"/api/v2/jobs/{t.alice_job}", headers=bearer(token)).status_code == 401


def test_a_signed_link_opens_one_jobs_files_and_events_for_reading_only(team: Team) -> None:
    t = team
    job = t.c.get(f"/api/v2/jobs/{t.alice_job}", headers=t.alice).json()
    access = job["access"]
    image = job["storyboard"][0]["image_url"]
    assert t.c.get(image).status_code == 200
    assert t.c.get(image.split("?")[0]).status_code == 401
    for path in ("export.pdf", "export.csv", "events"):
        assert t.c.get(f"/api/v2/jobs/{t.alice_job}/{path}",
                       params={"access": access}).status_code == 200, path
    assert t.c.post(f"/api/v2/jobs/{t.alice_job}/approve",
                    params={"access": access}).status_code == 403
    bob_image = image_of(t, t.bob_job, t.bob)
    assert t.c.get(bob_image, params={"access": access}).status_code == 404
    expired = job_access(get_engine(t.settings), t.alice_job, owner_view=True,
                         now=time.time() - 3 * 3600)
    assert t.c.get(image.split("?")[0], params={"access": expired}).status_code == 401
    forged = access[:-4] + ("AAAA" if not access.endswith("AAAA") else "BBBB")
    assert t.c.get(image.split("?")[0], params={"access": forged}).status_code == 401


def events_job(t: Team, job_id: int, access: str) -> dict[str, Any]:
    """The job as the event stream (which can only authenticate by ``?access=``) shows it."""
    with t.c.stream("GET", f"/api/v2/jobs/{job_id}/events", params={"access": access}) as r:
        assert r.status_code == 200
        data = [line for line in r.iter_lines() if line.startswith("data:")]
    result: dict[str, Any] = json.loads(data[-1].removeprefix("data:"))
    return result


def test_a_signed_link_shows_what_the_one_it_was_given_to_sees(team: Team) -> None:
    """The owner's page follows its run by the event stream: costs and all. A reviewer's
    link shows the board only, and cannot be turned into the owner's view."""
    t = team
    own = t.c.get(f"/api/v2/jobs/{t.alice_job}", headers=t.alice).json()
    streamed = events_job(t, t.alice_job, own["access"])
    assert streamed["owner"] == "alice" and streamed["actual_cost"] is not None
    assert "webhook_events" in streamed["parameters"] or "cache" in streamed["parameters"]
    assert streamed["access"].split(".")[2] == "o"

    token = t.c.post(f"/api/v2/jobs/{t.alice_job}/share", headers=t.alice,
                     json={}).json()["token"]
    seen = t.c.get(f"/api/v2/jobs/{t.alice_job}", headers=bearer(token)).json()
    assert seen["owner"] is None and seen["actual_cost"] is None
    streamed = events_job(t, t.alice_job, seen["access"])
    assert streamed["owner"] is None and streamed["actual_cost"] is None
    assert set(streamed["parameters"]) <= {"prompt", "duration", "style", "aspect_ratio",
                                           "seed", "planner", "review_plan"}
    job_id, expires, view, signature = seen["access"].split(".")
    assert view == "r"
    forged = f"{job_id}.{expires}.o.{signature}"
    assert t.c.get(f"/api/v2/jobs/{t.alice_job}/events",
                   params={"access": forged}).status_code == 401


def test_the_database_keeps_only_hashes(team: Team, settings: Settings) -> None:
    t = team
    token = t.alice["Authorization"].removeprefix("Bearer ")
    share = t.c.post(f"/api/v2/jobs/{t.alice_job}/share", headers=t.alice, json={}).json()
    dump = "\n".join(sqlite3.connect(settings.data_dir / "storyboard.db").iterdump())
    assert token not in dump and share["token"] not in dump


def test_limits_per_owner_answer_429_with_retry_after(settings: Settings) -> None:
    engine = get_engine(settings)
    token = bearer(create_token(engine, "carol")[0])
    limited = get_settings(submissions_per_minute=2, max_running_per_owner=0, sketch_delay=0)
    with serve(create_app(limited)) as base, httpx.Client(base_url=base, timeout=30) as c:
        codes = [c.post("/api/v2/generate", headers=token,
                        json={"prompt": PROMPT, "duration": 15}) for _ in range(3)]
        assert [r.status_code for r in codes] == [200, 200, 429]
        assert 0 < int(codes[2].headers["Retry-After"]) <= 60
        assert "STORYBOARD_SUBMISSIONS_PER_MINUTE" in codes[2].json()["detail"]
    slow = get_settings(submissions_per_minute=0, max_running_per_owner=1, sketch_delay=2)
    with serve(create_app(slow)) as base, httpx.Client(base_url=base, timeout=30) as c:
        first = c.post("/api/v2/generate", headers=token, json={"prompt": PROMPT,
                                                                "duration": 15})
        second = c.post("/api/v2/generate", headers=token, json={"prompt": PROMPT,
                                                                 "duration": 15})
        assert first.status_code == 200 and second.status_code == 429
        assert int(second.headers["Retry-After"]) > 0
        assert "STORYBOARD_MAX_RUNNING_PER_OWNER=1" in second.json()["detail"]
        c.post(f"/api/v2/jobs/{first.json()['job_id']}/cancel", headers=token)


def test_submissions_per_minute_are_counted_by_the_whole_fleet_through_redis(
    settings: Settings,
) -> None:
    """Two servers sharing Redis: an owner's submissions on either count against one minute."""
    require("Redis", REDIS)
    token = bearer(create_token(get_engine(settings), "dora")[0])
    fleet = get_settings(redis_url=REDIS_URL, queue_name=f"fleet-{uuid.uuid4().hex[:8]}",
                         submissions_per_minute=3, max_running_per_owner=0, sketch_delay=0)
    body = {"prompt": PROMPT, "duration": 15}
    with serve(create_app(fleet)) as one, serve(create_app(fleet)) as two:
        codes = [httpx.post(f"{base}/api/v2/generate", headers=token, json=body,
                            timeout=30).status_code for base in (one, two, one, two)]
    assert codes == [200, 200, 200, 429]


def test_single_user_mode_needs_no_token(settings: Settings) -> None:
    with serve(create_app(settings)) as base, httpx.Client(base_url=base, timeout=30) as c:
        job = c.post("/api/v2/generate", json={"prompt": PROMPT, "duration": 15}).json()
        body = c.get(f"/api/v2/jobs/{job['job_id']}").json()
        assert body["owner"] is None and body["access"] is None
        share = c.post(f"/api/v2/jobs/{job['job_id']}/share", json={}).json()
        # A share link works in single-user mode too (the reviewer is on this machine).
        assert c.get(f"/api/v2/jobs/{job['job_id']}", headers=bearer(share["token"])) \
            .status_code == 200


def test_serve_refuses_to_listen_beyond_loopback_without_tokens(settings: Settings) -> None:
    result = subprocess.run([sys.executable, "-m", "storyboard", "serve", "--host", "0.0.0.0",
                             "--port", "1"], check=False, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0 with no API tokens" in result.stderr
    assert "--insecure" in result.stderr


def test_tokens_commands(settings: Settings) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "storyboard", "tokens", *args],
                              check=False, capture_output=True, text=True, timeout=60)

    made = run("create", "dana", "--admin")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("sb_") and len(token) > 40 and "shown only now" in made.stderr
    again = run("create", "dana")
    assert again.returncode == 2 and "already has a token" in again.stderr
    listed = run("list")
    assert "dana" in listed.stdout and "yes" in listed.stdout and token not in listed.stdout
    assert run("revoke", "dana").returncode == 0
    assert run("revoke", "dana").returncode == 1
    assert run("create", "bad name").returncode == 2
    with serve(create_app(settings)) as base:
        assert httpx.get(f"{base}/api/v2/jobs", headers=bearer(token)).status_code == 401


def test_the_access_log_never_shows_a_signed_value() -> None:
    import logging

    from storyboard.api.logs import redact_access_log

    redact_access_log()
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "GET", "/media/jobs/1/a.png?access=1.2.SECRET",
                                "1.1", 200), None)
    for f in logging.getLogger("uvicorn.access").filters:
        f.filter(record)
    assert "SECRET" not in record.getMessage() and "access=***" in record.getMessage()


def test_the_openapi_document_describes_the_bearer_scheme(settings: Settings) -> None:
    schema = create_app(settings).openapi()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    operation = schema["paths"]["/api/v2/jobs/{job_id}"]["get"]
    assert {"HTTPBearer": []} in operation["security"]


def test_comments_are_in_the_pdfs_notes_and_the_approver_in_its_header(team: Team) -> None:
    import io

    from pypdf import PdfReader

    t = team
    j = f"/api/v2/jobs/{t.alice_job}"
    assert t.c.post(f"{j}/comments", headers=t.alice,
                    json={"text": "Love the opening", "scene_number": 1}).status_code == 201
    assert t.c.post(f"{j}/comments", headers=t.alice,
                    json={"text": "Overall: tighter", "scene_number": None}).status_code == 201
    bad = t.c.post(f"{j}/comments", headers=t.alice, json={"text": "x", "scene_number": 9})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "scene_number"]
    assert t.c.post(f"{j}/approve", headers=t.alice).status_code == 200
    pdf = t.c.get(f"{j}/export.pdf", headers=t.alice)
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Notes" in text and "Scene 1" in text and "Love the opening" in text
    assert "The whole board" in text and "Overall: tighter" in text
    assert "by alice" in text


def test_whoami_says_what_the_studio_may_show(team: Team) -> None:
    t = team
    assert t.c.get("/api/v2/whoami", headers=t.alice).json() == {
        "kind": "token", "name": "alice", "admin": False, "job_id": None,
        "can_comment": True, "can_approve": True, "can_edit": True}
    token = t.c.post(f"/api/v2/jobs/{t.alice_job}/share", headers=t.alice,
                     json={"label": "Client", "allow_comments": False}).json()["token"]
    assert t.c.get("/api/v2/whoami", headers=bearer(token)).json() == {
        "kind": "share", "name": "Client", "admin": False, "job_id": t.alice_job,
        "can_comment": False, "can_approve": False, "can_edit": False}
    assert t.c.post(f"/api/v2/jobs/{t.alice_job}/comments", headers=bearer(token),
                    json={"text": "hi"}).status_code == 403
    assert t.c.get("/api/v2/whoami").status_code == 401
