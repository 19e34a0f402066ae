"""Whole jobs on Replicate: the task, the real ReplicateClient and the fake Replicate on loopback.

Nothing here is mocked: the job builds its provider from the settings (as ``storyboard generate``
does), and every request crosses real HTTP to ``tests/fake_replicate.py``. Behaviour is shown by
what the fake recorded (creations, downloads, cancels) and what the job row holds, never by a clock.
"""

from __future__ import annotations

import asyncio
import collections
import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from storyboard import StoryboardEntry, generate_storyboard_task, get_job, save_generated_video
from storyboard.config import Settings, get_settings
from storyboard.db import get_engine, update_job
from storyboard.jobs import JobRuntime, run_storyboard_job
from storyboard.jobs.review import request_regeneration
from storyboard.scenes import parse_prompt_to_scenes
from storyboard.storage import path_for_url
from tests.fake_replicate import (  # the fixtures register by import, under their own names
    FAKE_API_KEY,
    SIZES,
    FakeReplicate,
    fake_replicate_fixture,  # noqa: F401
    fake_replicate_server_fixture,  # noqa: F401
)

KEY = FAKE_API_KEY
PRICE = 0.01  # not the default, to show the price is a setting
THREE_SCENES = {"duration": 15, "style": "cinematic"}
SIX_SCENES = {"duration": 30, "style": "cinematic"}


@pytest.fixture
def fake(fake_replicate: FakeReplicate) -> FakeReplicate:
    return fake_replicate


def settings_for(fake: FakeReplicate, **overrides: Any) -> Settings:
    """Replicate through the fake, chosen the way a user chooses it (provider + key + base URL)."""
    values: dict[str, Any] = {
        "image_provider": "replicate",
        "replicate_api_key": KEY,
        "replicate_base_url": fake.base_url,
        "replicate_poll_interval": 0.02,
        "replicate_wait": 1,
        "image_price": PRICE,
    }
    return get_settings(**{**values, **overrides})


def new_job(params: dict[str, Any]) -> int:
    return save_generated_video(
        prompt="A robot exploring Mars", video_url="", model_id="v2", parameters=params,
        status="pending",
    )


def job_row(job_id: int) -> dict[str, Any]:
    job = get_job(job_id)
    assert job is not None
    return job


def storyboard_of(job_id: int) -> list[StoryboardEntry]:
    raw = json.loads(job_row(job_id).get("storyboard_data") or "[]")
    return [StoryboardEntry.model_validate(e) for e in raw]


def creations_per_scene(fake: FakeReplicate, entries: list[StoryboardEntry]) -> list[int]:
    """How many predictions each scene asked for (creates carry the scene's prompt)."""
    prompts = collections.Counter(r.body["input"]["prompt"] for r in fake.creations)
    return [prompts[e.scene.image_prompt] for e in entries]


def run_job(job_id: int, settings: Settings, sleeps: list[tuple[float, int]] | None = None,
            fake: FakeReplicate | None = None) -> str | None:
    """Run the job as ``generate_storyboard_task`` does (provider from the settings), recording
    each backoff and how many creations the fake had seen when it began."""
    rt = JobRuntime.create(settings)

    async def record(seconds: float) -> None:
        assert sleeps is not None and fake is not None
        sleeps.append((seconds, len(fake.creations)))

    if sleeps is not None:
        rt.sleep = record

    async def main() -> str | None:
        try:
            return await run_storyboard_job(job_id, rt)
        finally:
            await rt.aclose()

    return asyncio.run(main())


# --- 1, 2, 5, 6: the real protocol, the job's inputs, durable images, cost -------------------


def test_a_job_makes_its_images_on_replicate_and_keeps_both_urls(fake: FakeReplicate) -> None:
    settings = settings_for(fake)
    job_id = new_job(SIX_SCENES)
    generate_storyboard_task(job_id, settings=settings)  # the spec's entry point

    job = job_row(job_id)
    assert job["status"] == "storyboard_ready" and job["error_message"] is None
    entries = storyboard_of(job_id)
    assert len(entries) == len(fake.creations) == len(fake.predictions) == 6
    for create in fake.creations:
        assert create.path == "/v1/models/black-forest-labs/flux-schnell/predictions"
        assert create.headers["authorization"] == f"Bearer {KEY}"
        assert create.headers["prefer"] == "wait=1"
        assert create.body["input"]["aspect_ratio"] == "16:9"  # the default
    for entry in entries:
        pid = entry.prediction_id
        assert entry.generation_status == "completed" and pid in fake.predictions
        # The original URL beside the durable one ...
        assert entry.source_url == f"http://127.0.0.1:{fake.port}/files/{pid}/out-0.webp"
        assert entry.image_url and entry.image_url.startswith("/media/jobs/")
        # ... which is a real image under $DATA, and still there once Replicate drops its copy.
        fake.remove_data(pid)
        path = path_for_url(settings.media_dir, entry.image_url)
        assert path is not None and path.is_relative_to(settings.data_dir.resolve())
        with Image.open(path) as image:
            assert (image.format, image.size) == ("WEBP", SIZES["16:9"])
    assert job["estimated_cost"] == pytest.approx(6 * PRICE)
    assert job["actual_cost"] == pytest.approx(6 * PRICE)


def test_the_jobs_aspect_ratio_seed_and_format_reach_replicate(fake: FakeReplicate) -> None:
    settings = settings_for(fake, output_format="png")
    job_id = new_job({**THREE_SCENES, "aspect_ratio": "9:16", "seed": 42})
    generate_storyboard_task(job_id, settings=settings)

    inputs = [c.body["input"] for c in fake.creations]
    assert {i["aspect_ratio"] for i in inputs} == {"9:16"}
    assert {i["output_format"] for i in inputs} == {"png"}
    assert sorted(i["seed"] for i in inputs) == [42, 43, 44]  # one seed per job, offset per scene
    assert all(i["go_fast"] is True and i["num_inference_steps"] == 4 for i in inputs)
    for entry in storyboard_of(job_id):
        path = path_for_url(settings.media_dir, entry.image_url or "")
        assert path is not None and path.suffix == ".png"
        assert Image.open(io.BytesIO(path.read_bytes())).size == SIZES["9:16"]


def test_each_scene_gets_its_own_seed_recorded_before_its_request(fake: FakeReplicate) -> None:
    """Without a job seed the job draws a random base seed and each scene takes the base plus
    its offset, written with the storyboard before any request: what lets a restarted worker
    find a prediction whose id it never received. A regenerated scene gets a new one (a new
    picture, not the same one again)."""
    settings = settings_for(fake)
    job_id = new_job(THREE_SCENES)
    run_job(job_id, settings)  # (that the seeds are stored first: test_execution's kill test)
    entries = storyboard_of(job_id)
    seeds = [e.seed for e in entries]
    assert None not in seeds and len(set(seeds)) == 3
    base = seeds[0]
    assert seeds == [base, (base + 1) % 2**31, (base + 2) % 2**31]  # type: ignore[operator]
    by_prompt = {c.body["input"]["prompt"]: c.body["input"]["seed"] for c in fake.creations}
    assert [by_prompt[e.scene.image_prompt] for e in entries] == seeds

    request_regeneration(get_engine(settings), job_id, 2)
    run_job(job_id, settings)
    again = storyboard_of(job_id)
    assert again[0].seed == seeds[0] and again[2].seed == seeds[2]
    assert again[1].seed not in (None, seeds[1])
    assert fake.creations[-1].body["input"]["seed"] == again[1].seed


def interrupted(settings: Settings, params: dict[str, Any], seeds: list[int | None]) -> int:
    """A job as a worker killed mid-run leaves it: scenes planned and seeded, none drawn."""
    job_id = new_job(params)
    entries = [StoryboardEntry(scene=scene, seed=seed) for scene, seed in zip(
        parse_prompt_to_scenes("A robot exploring Mars", params["duration"], params["style"]),
        seeds, strict=True)]
    update_job(get_engine(settings), job_id, status="generating_storyboard",
               storyboard_data=json.dumps([e.model_dump(mode="json") for e in entries]))
    return job_id


def test_a_resumed_job_looks_for_lost_predictions_only_with_seeds_of_its_own(
    fake: FakeReplicate,
) -> None:
    """Random seeds are ours alone: a resumed job looks its scenes up (one listing for all of
    them). A seed the user gave may be shared by an identical job: no looking, just creating."""
    settings = settings_for(fake)
    assert run_job(interrupted(settings, THREE_SCENES, [11, 12, 13]), settings) == "storyboard_ready"
    assert len(fake.requests_to("GET", "^/v1/predictions$")) == 1
    fake.reset()
    user_seeded = {**THREE_SCENES, "seed": 42}
    assert run_job(interrupted(settings, user_seeded, [42, 43, 44]), settings) == "storyboard_ready"
    assert fake.requests_to("GET", "^/v1/predictions$") == []
    assert sorted(c.body["input"]["seed"] for c in fake.creations) == [42, 43, 44]


# --- 4: retryable and permanent errors, through the job --------------------------------------


def test_transient_failures_are_retried_and_only_successes_are_paid(fake: FakeReplicate) -> None:
    fake.fail_next("create", 503)  # scene 1, attempt 1: no prediction at all
    fake.plan("failed")  # scene 1, attempt 2: a prediction that fails for a transient reason
    settings = settings_for(fake, scene_concurrency=1)  # one scene at a time: a known order
    job_id = new_job(THREE_SCENES)
    generate_storyboard_task(job_id, settings=settings)

    entries = storyboard_of(job_id)
    assert [e.generation_status for e in entries] == ["completed"] * 3
    assert creations_per_scene(fake, entries) == [3, 1, 1]
    statuses = collections.Counter(p.status for p in fake.predictions.values())
    assert statuses == {"succeeded": 3, "failed": 1}
    # Five creations, four predictions, three images: three are paid for.
    assert job_row(job_id)["actual_cost"] == pytest.approx(3 * PRICE)


def test_permanent_errors_fail_their_scene_at_once_with_an_actionable_message(
    fake: FakeReplicate,
) -> None:
    fake.plan("nsfw")  # the first prediction made: scene 2's, as scene 1's create is refused
    fake.fail_next(  # scene 1
        "create",
        422,
        body={
            "title": "Input validation failed",
            "status": 422,
            "detail": "- input.prompt: prompt is too long",
            "invalid_fields": [
                {"type": "max_length", "field": "input.prompt",
                 "description": "prompt is too long"}
            ],
        },
    )
    settings = settings_for(fake, scene_concurrency=1)
    job_id = new_job(THREE_SCENES)
    generate_storyboard_task(job_id, settings=settings)

    job, entries = job_row(job_id), storyboard_of(job_id)
    assert job["status"] == "storyboard_ready"  # scene 3 made it
    assert [e.generation_status for e in entries] == ["failed", "failed", "completed"]
    assert creations_per_scene(fake, entries) == [1, 1, 1]  # neither was retried
    assert "HTTP 422" in (entries[0].error or "")
    assert "input.prompt: prompt is too long" in (entries[0].error or "")
    assert "NSFW" in (entries[1].error or "") and "Reword" in (entries[1].error or "")
    assert job["actual_cost"] == pytest.approx(PRICE)


@pytest.mark.parametrize("concurrency", [0, 1], ids=["all-scenes-at-once", "one-at-a-time"])
@pytest.mark.parametrize(
    ("status", "fragments"),
    [
        (401, ("401", "REPLICATE_API_KEY", "https://replicate.com/account/api-tokens")),
        (403, ("403", "REPLICATE_API_KEY")),
        (402, ("402", "https://replicate.com/account/billing")),
        (404, ("404", "nobody/no-such-model", "STORYBOARD_IMAGE_MODEL")),
    ],
)
def test_a_key_billing_or_model_error_fails_the_job_once(
    fake: FakeReplicate,
    caplog: pytest.LogCaptureFixture,
    status: int,
    fragments: tuple[str, ...],
    concurrency: int,
) -> None:
    overrides: dict[str, Any] = {"scene_concurrency": concurrency}
    if status == 401:
        fake.api_key = "r8_the_key_replicate_knows"  # ours is rejected
    elif status == 404:
        overrides["image_model"] = "nobody/no-such-model"
    else:
        fake.fail_next("create", status, times=100)
    settings = settings_for(fake, **overrides)
    job_id = new_job(SIX_SCENES)
    with caplog.at_level(logging.INFO, logger="storyboard"):
        generate_storyboard_task(job_id, settings=settings)

    job = job_row(job_id)
    assert job["status"] == "failed"
    for fragment in fragments:
        assert fragment in job["error_message"]
    assert json.loads(job["progress"])["message"] == job["error_message"]
    # No scene burned its three attempts; one at a time, the first answer stops the job.
    per_scene = creations_per_scene(fake, storyboard_of(job_id))
    assert max(per_scene) == 1
    if concurrency == 1:
        assert sum(per_scene) == 1
    assert not [m for m in caplog.messages if "Attempt 2 failed" in m]
    assert fake.predictions == {}
    assert job["actual_cost"] == 0
    # No scene is left looking "generating" in a failed job; each says why it stopped.
    for entry in storyboard_of(job_id):
        assert entry.generation_status in ("failed", "completed")
        assert entry.generation_status == "completed" or entry.error == job["error_message"]


def test_a_retry_after_a_429_waits_at_least_retry_after(fake: FakeReplicate) -> None:
    fake.fail_next("create", 429, headers={"Retry-After": "30"})
    # The spec's backoff (2 s, 4 s); no fleet-wide limiter, whose pause would really wait 30 s.
    settings = settings_for(fake, scene_concurrency=1, retry_base_delay=2.0, image_rate_limit=0)
    sleeps: list[tuple[float, int]] = []
    job_id = new_job(THREE_SCENES)
    assert run_job(job_id, settings, sleeps, fake) == "storyboard_ready"

    # One backoff, of the 30 s Replicate asked for (not the 2 s backoff), taken after the
    # throttled create and before the next one.
    assert sleeps == [(30.0, 1)]
    assert creations_per_scene(fake, storyboard_of(job_id)) == [2, 1, 1]


def test_a_throttled_download_waits_its_retry_after_and_reuses_the_prediction(
    fake: FakeReplicate,
) -> None:
    fake.fail_next("file", 503, headers={"Retry-After": "20"})
    settings = settings_for(fake, scene_concurrency=1, retry_base_delay=2.0, image_rate_limit=0)
    sleeps: list[tuple[float, int]] = []
    job_id = new_job(THREE_SCENES)
    assert run_job(job_id, settings, sleeps, fake) == "storyboard_ready"
    assert sleeps == [(20.0, 1)]  # the file host's 20 s, not the 2 s backoff
    assert creations_per_scene(fake, storyboard_of(job_id)) == [1, 1, 1]  # downloaded again


def test_a_429_without_retry_after_uses_the_body_hint_or_the_backoff(fake: FakeReplicate) -> None:
    fake.fail_next("create", 429)  # "Expected available in 1 second.": less than the backoff
    fake.fail_next(
        "create", 429,
        body={"title": "Throttled", "status": 429, "detail": "Expected available in 9 seconds."},
    )
    settings = settings_for(fake, scene_concurrency=1, retry_base_delay=2.0, image_rate_limit=0)
    sleeps: list[tuple[float, int]] = []
    job_id = new_job(THREE_SCENES)
    assert run_job(job_id, settings, sleeps, fake) == "storyboard_ready"
    assert sleeps == [(2.0, 1), (9.0, 2)]  # max(backoff, hint): 2 s then 4 s, or the hint
    assert creations_per_scene(fake, storyboard_of(job_id)) == [3, 1, 1]


# --- 3: the per-image limit covers the whole prediction, and cancels it ----------------------


def test_a_hanging_prediction_is_cancelled_when_its_attempt_times_out(
    fake: FakeReplicate,
) -> None:
    fake.wait_cap = 0  # creates answer at once; the time then passes while polling
    for _ in range(3):
        fake.plan("hang")  # scene 1, every attempt
    settings = settings_for(fake, scene_concurrency=1, image_timeout=0.3)
    job_id = new_job(THREE_SCENES)
    generate_storyboard_task(job_id, settings=settings)

    entries = storyboard_of(job_id)
    assert [e.generation_status for e in entries] == ["failed", "completed", "completed"]
    assert entries[0].error == "timed out after 0.3s"
    assert creations_per_scene(fake, entries) == [3, 1, 1]
    hung = [pid for pid, p in fake.predictions.items() if p.plan.outcome == "hang"]
    assert len(hung) == 3
    assert sorted(fake.cancels) == sorted(hung)  # each timed-out attempt cancelled its own
    assert all(fake.predictions[pid].status == "canceled" for pid in hung)
    # Many polls happened within one attempt: the limit is not per HTTP call.
    assert len(fake.requests_to("GET", f"^/v1/predictions/{hung[0]}$")) > 2
    assert job_row(job_id)["actual_cost"] == pytest.approx(2 * PRICE)


def test_an_attempt_that_timed_out_before_the_answer_adopts_the_prediction_it_made(
    fake: FakeReplicate,
) -> None:
    """Scene 1's create reaches Replicate, but its answer comes after the attempt's time is up
    (a slow network). The retry finds that prediction by the scene's own seed and inputs and
    uses it: one prediction, paid once, no second create."""
    fake.plan(latency=0.05, answer_delay=3.0)  # scene 1's first create
    settings = settings_for(fake, scene_concurrency=1, image_timeout=1.0, replicate_wait=60)
    job_id = new_job(THREE_SCENES)
    sleeps: list[tuple[float, int]] = []
    assert run_job(job_id, settings, sleeps, fake) == "storyboard_ready"

    entries = storyboard_of(job_id)
    assert [e.generation_status for e in entries] == ["completed"] * 3
    assert len(sleeps) == 1  # scene 1 was retried once
    assert creations_per_scene(fake, entries) == [1, 1, 1]
    assert entries[0].prediction_id == next(iter(fake.predictions))  # the one the lost create made
    assert len(fake.requests_to("GET", "^/v1/predictions$")) == 1
    assert job_row(job_id)["actual_cost"] == pytest.approx(3 * PRICE)


# --- 5: a failed download is retried; the prediction is not run again ------------------------


@pytest.mark.parametrize(
    ("status", "body"),
    [(404, None), (503, None), (200, {"not": "an image"})],
    ids=["expired-url", "file-host-5xx", "not-an-image"],
)
def test_a_failed_download_retries_the_download_not_the_prediction(
    fake: FakeReplicate, status: int, body: dict[str, Any] | None
) -> None:
    fake.fail_next("file", status, body=body)
    settings = settings_for(fake, scene_concurrency=1)
    job_id = new_job(THREE_SCENES)
    generate_storyboard_task(job_id, settings=settings)

    entries = storyboard_of(job_id)
    assert [e.generation_status for e in entries] == ["completed"] * 3
    assert creations_per_scene(fake, entries) == [1, 1, 1]  # paid once per scene
    first = entries[0].prediction_id
    files = [r.path for r in fake.requests_to("GET", "^/files/")]
    assert files.count(f"/files/{first}/out-0.webp") == 2  # downloaded again
    # The retry looked the prediction up again instead of creating a new one.
    assert len(fake.requests_to("GET", f"^/v1/predictions/{first}$")) == 1
    assert job_row(job_id)["actual_cost"] == pytest.approx(3 * PRICE)


def test_a_download_that_never_succeeds_fails_the_scene_without_new_predictions(
    fake: FakeReplicate,
) -> None:
    fake.fail_next("file", 503, times=3)
    settings = settings_for(fake, scene_concurrency=1)
    job_id = new_job(THREE_SCENES)
    generate_storyboard_task(job_id, settings=settings)

    entries = storyboard_of(job_id)
    assert [e.generation_status for e in entries] == ["failed", "completed", "completed"]
    assert "HTTP 503" in (entries[0].error or "")
    assert creations_per_scene(fake, entries) == [1, 1, 1]
    assert len(fake.requests_to("GET", f"^/files/{entries[0].prediction_id}/")) == 3


def test_a_billed_prediction_whose_download_failed_is_still_counted(fake: FakeReplicate) -> None:
    fake.fail_next("file", 503, times=3)  # scene 1's prediction succeeds; its image never comes
    settings = settings_for(fake, scene_concurrency=1)
    job_id = new_job(THREE_SCENES)
    generate_storyboard_task(job_id, settings=settings)
    assert [p.status for p in fake.predictions.values()] == ["succeeded"] * 3
    assert job_row(job_id)["actual_cost"] == pytest.approx(3 * PRICE)


def test_an_output_deleted_before_the_retry_is_made_again(fake: FakeReplicate) -> None:
    """The one case where a scene pays twice: Replicate no longer has the image to download."""

    class Expire(logging.Handler):
        # When attempt 1 fails on its download, Replicate drops the prediction's output (as it
        # does an hour after a prediction), so the retry finds nothing left to download.
        def emit(self, record: logging.LogRecord) -> None:
            if "Attempt 1 failed" in record.getMessage():
                (pid,) = fake.predictions
                fake.remove_data(pid)

    fake.fail_next("file", 404)
    settings = settings_for(fake, scene_concurrency=1)
    job_id = new_job(THREE_SCENES)
    handler, jobs_log = Expire(), logging.getLogger("storyboard.jobs")
    jobs_log.addHandler(handler)
    try:
        generate_storyboard_task(job_id, settings=settings)
    finally:
        jobs_log.removeHandler(handler)

    entries = storyboard_of(job_id)
    assert [e.generation_status for e in entries] == ["completed"] * 3
    assert creations_per_scene(fake, entries) == [2, 1, 1]
    assert job_row(job_id)["actual_cost"] == pytest.approx(4 * PRICE)  # both were billed


# --- 8: the key never leaves the Authorization header ----------------------------------------


def test_the_key_never_appears_in_the_row_the_storyboard_the_logs_or_errors(
    fake: FakeReplicate, caplog: pytest.LogCaptureFixture, isolated_env: Path
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, httpx and httpcore included
    # Scene 1: a 5xx that echoes the Authorization header, then a 422 that does too.
    fake.fail_next("create", 500, echo_auth=True)
    fake.fail_next("create", 422, echo_auth=True)
    # Scene 2: predictions whose error text quotes the key, three times.
    for _ in range(3):
        fake.plan("failed", error=f"worker crashed; token was {KEY}")
    settings = settings_for(fake, scene_concurrency=1)
    partial = new_job(THREE_SCENES)
    generate_storyboard_task(partial, settings=settings)
    # A second job whose key is rejected, by a 401 that echoes it.
    fake.fail_next("create", 401, echo_auth=True)
    rejected = new_job(THREE_SCENES)
    generate_storyboard_task(rejected, settings=settings_for(fake, scene_concurrency=1))

    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in fake.creations)
    entries = storyboard_of(partial)
    assert [e.generation_status for e in entries] == ["failed", "failed", "completed"]
    assert "[redacted]" in (entries[0].error or "") and "[redacted]" in (entries[1].error or "")
    assert job_row(rejected)["status"] == "failed"
    for job_id in (partial, rejected):
        row = job_row(job_id)
        assert KEY not in json.dumps(row, default=str)
        assert KEY not in (row.get("storyboard_data") or "")
        assert KEY not in (row.get("error_message") or "")
    assert "[redacted]" in caplog.text  # the echoes reached the logs, redacted
    assert KEY not in caplog.text
    for record in caplog.records:
        assert KEY not in record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            assert KEY not in repr(record.exc_info[1])
    # Nor anywhere on disk: the database file(s) and every stored image or export.
    for path in isolated_env.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
