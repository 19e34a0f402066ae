"""Plans through the real app over HTTP: the plan on the job, its costs, editing the bible,
stale frames and re-renders, shot edits, and the plan-first review (plan_ready)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator

import httpx
import pytest

from storyboard.config import Settings, get_settings
from storyboard.db import get_engine, get_job_row
from tests.fake_llm import (  # the fixtures register by import, under their own names
    FAKE_LLM_KEY,
    FakeLLM,
    fake_llm_fixture,  # noqa: F401
    fake_llm_server_fixture,  # noqa: F401
)

from .providers import ScriptedProvider
from .story import LIGHTHOUSE, MARA_LOOK
from .test_review import ThreadDispatch, client, wait_for

PRICE = 0.003  # the scripted provider's price per image


@pytest.fixture
def llm_settings(fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The app's settings with the fake OpenAI-compatible server as its language model."""
    monkeypatch.setenv("STORYBOARD_PLANNER", "auto")
    monkeypatch.setenv("STORYBOARD_LLM_BASE_URL", fake_llm.base_url)
    monkeypatch.setenv("STORYBOARD_LLM_API_KEY", FAKE_LLM_KEY)
    return get_settings()


@pytest.fixture
def provider() -> ScriptedProvider:
    return ScriptedProvider(price_per_image=PRICE)


@pytest.fixture
def api(llm_settings: Settings, provider: ScriptedProvider) -> Iterator[httpx.Client]:
    dispatch = ThreadDispatch(llm_settings, provider)
    with client(llm_settings, dispatch=dispatch) as c:
        yield c
        dispatch.join()


def story(c: httpx.Client, **body: object) -> dict:  # type: ignore[type-arg]
    response = c.post("/api/v2/generate", json={"prompt": LIGHTHOUSE, "duration": 45, **body})
    assert response.status_code == 200, response.text
    return wait_for(c, response.json()["job_id"],
                    ("storyboard_ready", "failed", "cancelled", "plan_ready"))


def scenes_with(job: dict, character: str) -> list[int]:  # type: ignore[type-arg]
    return [e["scene"]["scene_number"] for e in job["storyboard"]
            if character in e["scene"].get("characters", [])]


def test_a_story_prompt_gets_a_planned_storyboard(api: httpx.Client,
                                                  provider: ScriptedProvider) -> None:
    job = story(api)
    assert job["status"] == "storyboard_ready"
    plan = job["plan"]
    assert plan["planner"]["kind"] == "openai" and plan["planner"]["model"] == "gpt-4o-mini"
    assert [c["name"] for c in plan["characters"]] == ["Mara", "Ezra"]
    assert len(plan["scenes"]) == len(job["storyboard"]) == 9
    # The frames no longer all repeat the prompt.
    prompts = [e["scene"]["image_prompt"] for e in job["storyboard"]]
    assert len(set(prompts)) == 9 and not any(LIGHTHOUSE in p for p in prompts)
    first = job["storyboard"][0]["scene"]
    assert {"beat", "visual", "shot_size", "camera_angle", "camera_movement", "characters",
            "location", "transition"} <= set(first)
    # Every cent: planning tokens are in the estimate and in what was spent.
    planning = plan["planner"]["cost"]
    assert planning > 0
    assert math.isclose(job["estimated_cost"], planning + 9 * PRICE, abs_tol=1e-6)
    assert math.isclose(job["actual_cost"], planning + 9 * PRICE, abs_tol=1e-6)
    # The sketch renderer would letter these names beside the figures.
    reading = next(r for r in provider.calls if r.scene and r.scene.scene_number == 3)
    assert reading.cast == ("Mara",)


def test_planner_llm_without_a_language_model_is_a_422_naming_it(settings: Settings) -> None:
    with client(settings, dispatch=ThreadDispatch(settings, ScriptedProvider())) as c:
        response = c.post("/api/v2/generate", json={"prompt": "x", "planner": "llm"})
        assert response.status_code == 422
        (error,) = response.json()["detail"]
        assert error["loc"] == ["body", "planner"]
        assert "STORYBOARD_LLM_API_KEY" in error["msg"]
        assert c.get("/api/v2/jobs").json()["total"] == 0  # nothing written


def test_a_request_chooses_its_planner(api: httpx.Client, fake_llm: FakeLLM) -> None:
    job = story(api, planner="rules")
    assert job["plan"]["planner"]["kind"] == "rules" and fake_llm.requests == []
    assert job["storyboard"][0]["scene"]["description"] == f"Opening scene: {LIGHTHOUSE}"


def test_a_fallback_says_why_in_the_plan_and_the_progress(api: httpx.Client,
                                                          fake_llm: FakeLLM) -> None:
    fake_llm.answer("not a plan", times=2)
    job = story(api, review_plan=True)
    reason = job["plan"]["planner"]["fallback_reason"]
    assert job["plan"]["planner"]["kind"] == "rules" and reason.startswith("openai (gpt-4o-mini)")
    assert reason in job["progress"]["message"]
    assert job["plan"]["planner"]["cost"] > 0 and job["actual_cost"] > 0  # the failed turns


def test_editing_a_look_marks_only_its_frames_stale_and_spends_nothing(
        api: httpx.Client, provider: ScriptedProvider) -> None:
    job = story(api)
    job_id, calls = job["job_id"], len(provider.calls)
    new_look = "woman in her sixties, short white hair, red raincoat"
    response = api.patch(f"/api/v2/jobs/{job_id}/plan",
                         json={"characters": [{"id": "mara", "look": new_look}]})
    assert response.status_code == 200, response.text
    edited = response.json()
    mara = scenes_with(edited, "mara")
    stale = [e["scene"]["scene_number"] for e in edited["storyboard"] if e["stale"]]
    assert stale == mara and 0 < len(mara) < 9
    for entry in edited["storyboard"]:
        prompt = entry["scene"]["image_prompt"]
        assert (f"Mara: {new_look}" in prompt) == (entry["stale"])
        assert MARA_LOOK not in prompt
    assert edited["plan"]["characters"][0]["look"] == new_look
    assert len(provider.calls) == calls and edited["actual_cost"] == job["actual_cost"]
    assert edited["status"] == "storyboard_ready"

    # One call redraws them: earlier images kept, each with its own seed, stale cleared.
    response = api.post(f"/api/v2/jobs/{job_id}/rerender", json={"scenes": "stale"})
    assert response.status_code == 202, response.text
    after = wait_for(api, job_id)
    assert after["status"] == "storyboard_ready"
    redrawn = [r.scene.scene_number for r in provider.calls[calls:]]  # type: ignore[union-attr]
    assert sorted(redrawn) == mara
    before = {e["scene"]["scene_number"]: e for e in job["storyboard"]}
    for entry in after["storyboard"]:
        number = entry["scene"]["scene_number"]
        assert entry["stale"] is False
        if number in mara:
            assert entry["versions"][-1]["image_url"] == before[number]["image_url"]
            assert entry["seed"] == before[number]["seed"]
        else:
            assert entry == before[number]
    assert math.isclose(after["actual_cost"], job["actual_cost"] + len(mara) * PRICE,
                        abs_tol=1e-6)
    # Nothing stale any more: a second "stale" re-render has nothing to do.
    again = api.post(f"/api/v2/jobs/{job_id}/rerender", json={"scenes": "stale"})
    assert again.status_code == 409 and "no stale frames" in again.json()["detail"]


def test_style_edits_touch_every_frame_and_bad_edits_are_refused(api: httpx.Client) -> None:
    job = story(api)
    job_id = job["job_id"]
    edited = api.patch(f"/api/v2/jobs/{job_id}/plan",
                       json={"style": {"palette": "teal and amber"}}).json()
    assert all(e["stale"] for e in edited["storyboard"])
    assert all("Palette: teal and amber" in e["scene"]["image_prompt"]
               for e in edited["storyboard"])
    for body, field in (({"characters": [{"id": "ghost", "look": "x"}]}, "characters"),
                        ({"locations": [{"id": "moon", "name": "Moon"}]}, "locations"),
                        ({"characters": [{"id": "mara", "look": ""}]}, "characters"),
                        ({"style": {"look": "a\x00"}}, "style"),
                        ({"plot": "twist"}, "plot")):
        response = api.patch(f"/api/v2/jobs/{job_id}/plan", json=body)
        assert response.status_code == 422, body
        assert field in json.dumps(response.json()["detail"])
    rerender = api.post(f"/api/v2/jobs/{job_id}/rerender", json={"scenes": [2, 11]})
    assert rerender.status_code == 422
    assert api.patch("/api/v2/jobs/999/plan", json={}).status_code == 404


def test_a_running_job_cannot_be_edited(llm_settings: Settings) -> None:
    slow = ScriptedProvider(price_per_image=PRICE, delay=5)
    dispatch = ThreadDispatch(llm_settings, slow)
    with client(llm_settings, dispatch=dispatch) as c:
        job_id = c.post("/api/v2/generate", json={"prompt": LIGHTHOUSE,
                                                  "duration": 15}).json()["job_id"]
        wait_for(c, job_id, ("generating_storyboard",))
        response = c.patch(f"/api/v2/jobs/{job_id}/plan", json={"style": {"look": "noir"}})
        assert response.status_code == 409
        assert c.post(f"/api/v2/jobs/{job_id}/rerender",
                      json={"scenes": [1]}).status_code == 409
        c.post(f"/api/v2/jobs/{job_id}/cancel")
        dispatch.join()


def test_regenerate_takes_shot_fields_and_composes_the_prompt_again(
        api: httpx.Client) -> None:
    job = story(api)
    job_id = job["job_id"]
    response = api.post(f"/api/v2/jobs/{job_id}/scenes/4/regenerate", json={
        "shot_size": "close_up", "camera_angle": "low", "camera_movement": "zoom_in",
        "characters": ["ezra"], "location": "island", "dialogue": "Who's there?"})
    assert response.status_code == 202, response.text
    after = wait_for(api, job_id)
    scene = after["storyboard"][3]["scene"]
    assert (scene["shot_size"], scene["camera_angle"], scene["camera_movement"]) == (
        "close_up", "low", "zoom_in")
    assert scene["image_prompt"].startswith("Close-up on the face, low angle looking up, "
                                            "zooming in. ")
    assert "Ezra: thin old man" in scene["image_prompt"] and "Mara:" not in scene["image_prompt"]
    assert "The hidden island:" in scene["image_prompt"]
    assert scene["dialogue"] == "Who's there?"
    assert after["plan"]["scenes"][3]["shot_size"] == "close_up"  # one source of truth
    for body, field in (({"characters": ["ghost"]}, "characters"),
                        ({"location": "moon"}, "location"),
                        ({"shot_size": "huge"}, "shot_size")):
        bad = api.post(f"/api/v2/jobs/{job_id}/scenes/4/regenerate", json=body)
        assert bad.status_code == 422, body
        assert field in json.dumps(bad.json()["detail"])


def test_plan_first_then_render(api: httpx.Client, provider: ScriptedProvider) -> None:
    job = story(api, review_plan=True)
    job_id = job["job_id"]
    assert job["status"] == "plan_ready" and provider.calls == []
    sketches = [e["image_url"] for e in job["storyboard"]]
    assert all(re.search(r"/scene-\d\d-plan-[0-9a-f]{10}\.png$", url) for url in sketches)
    planning = job["plan"]["planner"]["cost"]
    assert math.isclose(job["estimated_cost"], planning + 9 * PRICE, abs_tol=1e-6)
    assert job["actual_cost"] == planning
    assert api.post(f"/api/v2/jobs/{job_id}/approve").status_code == 409
    assert api.post(f"/api/v2/jobs/{job_id}/rerender",
                    json={"scenes": [1]}).status_code == 409
    # The event stream ends: the plan waits for the user.
    with api.stream("GET", f"/api/v2/jobs/{job_id}/events") as events:
        text = "".join(events.iter_text())
    assert "event: done" in text
    # Editing a shot under review redraws its sketch at once; nothing runs, nothing is spent.
    edited = api.post(f"/api/v2/jobs/{job_id}/scenes/2/regenerate",
                      json={"shot_size": "extreme_close_up"})
    assert edited.status_code == 202 and edited.json()["status"] == "plan_ready"
    assert edited.json()["storyboard"][1]["scene"]["shot_size"] == "extreme_close_up"
    assert edited.json()["storyboard"][1]["versions"] == []
    # A new sketch under a new name (a browser's cached copy of the old one is never shown).
    assert edited.json()["storyboard"][1]["image_url"] != sketches[1]
    assert edited.json()["storyboard"][0]["image_url"] == sketches[0]
    styled = api.patch(f"/api/v2/jobs/{job_id}/plan", json={"style": {"look": "noir"}}).json()
    assert styled["status"] == "plan_ready" and not any(e["stale"] for e in styled["storyboard"])
    assert provider.calls == []

    response = api.post(f"/api/v2/jobs/{job_id}/render")
    assert response.status_code == 202, response.text
    done = wait_for(api, job_id)
    assert done["status"] == "storyboard_ready" and len(provider.calls) == 9
    # Scenes are drawn concurrently: the calls come in any order.
    calls = {c.scene.scene_number: c for c in provider.calls}  # type: ignore[union-attr]
    assert calls[2].scene.shot_size == "extreme_close_up"  # type: ignore[union-attr]
    assert "Noir" in calls[1].prompt
    assert not any("-plan-" in e["image_url"] for e in done["storyboard"])
    assert math.isclose(done["actual_cost"], planning + 9 * PRICE, abs_tol=1e-6)
    assert api.post(f"/api/v2/jobs/{job_id}/render").status_code == 409


def test_a_plan_under_review_can_be_cancelled(api: httpx.Client) -> None:
    job = story(api, review_plan=True)
    response = api.post(f"/api/v2/jobs/{job['job_id']}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"


def test_the_llm_key_is_not_stored(api: httpx.Client, llm_settings: Settings) -> None:
    job = story(api)
    row = get_job_row(get_engine(llm_settings), job["job_id"])
    assert row is not None
    stored = " ".join(str(getattr(row, c)) for c in ("parameters", "plan", "storyboard_data",
                                                     "progress", "error_message"))
    assert FAKE_LLM_KEY not in stored
    assert FAKE_LLM_KEY not in (llm_settings.data_dir / "storyboard.db").read_bytes().decode(
        "latin-1")


def test_the_pdf_prints_each_frames_shot_line_and_dialogue(api: httpx.Client) -> None:
    import io

    from pypdf import PdfReader

    job = story(api)
    pdf = api.get(f"/api/v2/jobs/{job['job_id']}/export.pdf")
    assert pdf.status_code == 200
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "CU \u00b7 EYE LEVEL \u00b7 DOLLY IN" in text  # scene 3, "Reading"
    assert "\u201c\"Come find me.\"\u201d" in text or "Come find me." in text
    assert "READING" in text  # the plan's beat, not the spec's position
    sheet = api.get(f"/api/v2/jobs/{job['job_id']}/export.zip")
    assert sheet.status_code == 200


def test_words_only_edits_are_saved_without_a_redraw_and_clear_approval(
        api: httpx.Client, provider: ScriptedProvider) -> None:
    job = story(api)
    job_id, calls = job["job_id"], len(provider.calls)
    assert api.post(f"/api/v2/jobs/{job_id}/approve").json()["approved"] is True
    response = api.post(f"/api/v2/jobs/{job_id}/scenes/3/regenerate",
                        json={"dialogue": "Come and find me.", "transition": "dissolve"})
    assert response.status_code == 202
    after = response.json()
    assert after["status"] == "storyboard_ready" and after["approved"] is False
    entry = after["storyboard"][2]
    assert entry["scene"]["dialogue"] == "Come and find me."
    assert entry["scene"]["transition"] == "dissolve"
    assert entry["image_url"] == job["storyboard"][2]["image_url"] and entry["versions"] == []
    assert len(provider.calls) == calls and after["actual_cost"] == job["actual_cost"]
    # A bible edit that changes frames also asks for a new approval.
    assert api.post(f"/api/v2/jobs/{job_id}/approve").json()["approved"] is True
    edited = api.patch(f"/api/v2/jobs/{job_id}/plan",
                       json={"locations": [{"id": "sea", "look": "glassy grey sea"}]}).json()
    assert edited["approved"] is False and any(e["stale"] for e in edited["storyboard"])
    # An edit that changes no frame (the logline is not in any prompt) keeps it.
    assert api.post(f"/api/v2/jobs/{job_id}/approve").json()["approved"] is True
    kept = api.patch(f"/api/v2/jobs/{job_id}/plan", json={"logline": "A keeper sails."}).json()
    assert kept["approved"] is True and kept["plan"]["logline"] == "A keeper sails."


def test_an_unknown_bible_id_is_located_as_fastapi_does(api: httpx.Client) -> None:
    job = story(api)
    response = api.patch(f"/api/v2/jobs/{job['job_id']}/plan",
                         json={"characters": [{"id": "mara"}, {"id": "ghost", "look": "x"}]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "characters", 1, "id"]


def test_the_server_says_which_planners_it_has(api: httpx.Client) -> None:
    assert api.get("/api/v2/planning").json() == {
        "default": "openai", "llm": {"kind": "openai", "model": "gpt-4o-mini"}}
    offline = get_settings(llm_base_url=None, llm_api_key=None)
    with client(offline, dispatch=ThreadDispatch(offline, ScriptedProvider())) as c:
        assert c.get("/api/v2/planning").json() == {"default": "rules", "llm": None}


# --- after review ---------------------------------------------------------------------------


def test_a_fallback_is_still_said_when_the_storyboard_is_ready(api: httpx.Client,
                                                               fake_llm: FakeLLM) -> None:
    fake_llm.answer("not a plan", times=2)
    job = story(api)
    assert job["status"] == "storyboard_ready"
    assert job["progress"]["message"].startswith("Storyboard ready - planned with the rules (")
    assert job["plan"]["planner"]["fallback_reason"] in job["progress"]["message"]


def test_a_hand_written_prompt_is_kept_and_an_undone_edit_leaves_nothing_stale(
        api: httpx.Client) -> None:
    job = story(api)
    job_id = job["job_id"]
    mine = "A lighthouse in watercolour, seen from the sea, no people"
    api.post(f"/api/v2/jobs/{job_id}/scenes/1/regenerate", json={"image_prompt": mine})
    wait_for(api, job_id)
    edited = api.patch(f"/api/v2/jobs/{job_id}/plan",
                       json={"style": {"palette": "teal and amber"}}).json()
    assert edited["storyboard"][0]["scene"]["image_prompt"] == mine  # a person's own words
    assert not edited["storyboard"][0]["stale"]
    assert all(e["stale"] for e in edited["storyboard"][1:])
    undone = api.patch(f"/api/v2/jobs/{job_id}/plan",
                       json={"style": {"palette": job["plan"]["style"]["palette"]}}).json()
    assert not any(e["stale"] for e in undone["storyboard"])  # drawn from these very prompts
    assert api.post(f"/api/v2/jobs/{job_id}/rerender", json={"scenes": "stale"}).status_code == 409


def test_a_cancelled_plan_has_no_frames_posing_as_images(api: httpx.Client,
                                                         provider: ScriptedProvider) -> None:
    job = story(api, review_plan=True)
    job_id = job["job_id"]
    cancelled = api.post(f"/api/v2/jobs/{job_id}/cancel").json()
    assert all(e["image_url"] is None for e in cancelled["storyboard"])
    api.post(f"/api/v2/jobs/{job_id}/scenes/1/regenerate")
    after = wait_for(api, job_id)
    assert after["storyboard"][0]["generation_status"] == "completed"
    assert all(e["generation_status"] == "failed" and e["image_url"] is None
               for e in after["storyboard"][1:])
    assert len(provider.calls) == 1


def test_shot_fields_on_a_storyboard_made_before_plans_keep_its_subject(
        settings: Settings) -> None:
    from storyboard import generate_storyboard_task, save_generated_video
    from storyboard.db import update_job

    provider = ScriptedProvider()
    job_id = save_generated_video("A robot exploring Mars", "", "v2",
                                  {"duration": 15, "style": "cinematic"}, "pending")
    generate_storyboard_task(job_id, settings=settings, provider=provider)
    # As a job stored before plans: no plan, scenes without shot fields.
    engine = get_engine(settings)
    row = get_job_row(engine, job_id)
    assert row is not None
    legacy = [{"scene": {k: v for k, v in e["scene"].items()
                         if k in ("scene_number", "description", "duration", "image_prompt")},
               **{k: v for k, v in e.items() if k != "scene"}}
              for e in json.loads(row.storyboard_data or "[]")]
    update_job(engine, job_id, plan=None, storyboard_data=json.dumps(legacy))
    with client(settings, dispatch=ThreadDispatch(settings, provider)) as c:
        response = c.post(f"/api/v2/jobs/{job_id}/scenes/1/regenerate",
                          json={"shot_size": "close_up"})
        assert response.status_code == 202, response.text
        scene = wait_for(c, job_id)["storyboard"][0]["scene"]
    assert scene["image_prompt"].startswith("Close-up on the face. Opening scene: A robot")


def test_an_edit_made_meanwhile_is_not_undone(api: httpx.Client) -> None:
    """Two people edit the same storyboard: the later write, made from what it read before the
    other's edit, is refused instead of silently undoing it."""
    from storyboard.db import update_job

    job = story(api)
    job_id = job["job_id"]
    engine = get_engine(get_settings())
    before = get_job_row(engine, job_id)
    assert before is not None
    api.patch(f"/api/v2/jobs/{job_id}/plan", json={"style": {"look": "noir"}})
    assert not update_job(engine, job_id, unchanged_since=before.updated_at,
                          storyboard_data=before.storyboard_data)
    assert "Noir" in api.get(f"/api/v2/jobs/{job_id}").json()["storyboard"][0]["scene"][
        "image_prompt"]


def test_clearing_a_scenes_location_and_asking_for_a_model_a_worker_lacks(
        api: httpx.Client, llm_settings: Settings) -> None:
    job = story(api)
    job_id = job["job_id"]
    cleared = api.post(f"/api/v2/jobs/{job_id}/scenes/2/regenerate", json={"location": ""})
    assert cleared.status_code == 202
    after = wait_for(api, job_id)
    assert "location" not in after["storyboard"][1]["scene"]  # cleared (unset fields are left out)
    # A server with a language model takes "llm"; a worker without one plans with the rules
    # and says why.
    from storyboard import generate_storyboard_task, save_generated_video

    offline = get_settings(llm_base_url=None, llm_api_key=None)
    job_id = save_generated_video(LIGHTHOUSE, "", "v2", {"duration": 15, "planner": "llm"},
                                  "pending")
    generate_storyboard_task(job_id, settings=offline, provider=ScriptedProvider())
    row = get_job_row(get_engine(offline), job_id)
    assert row is not None and row.plan is not None
    assert "no language model is configured" in json.loads(row.plan)["planner"][
        "fallback_reason"]
