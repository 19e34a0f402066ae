"""The background task through the public API, with an injected image provider."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from pathlib import Path

import pytest
from sqlalchemy import event

from storyboard import (
    StoryboardEntry,
    VideoProgress,
    generate_storyboard_task,
    get_job,
    save_generated_video,
)
from storyboard.config import Settings
from storyboard.db import get_engine, update_job
from storyboard.errors import AccountError, PermanentImageError, RetryableImageError
from storyboard.images import ImageRequest
from storyboard.jobs import JobRuntime, run_storyboard_job
from storyboard.storage import path_for_url

from .providers import ScriptedProvider

SPEC_PARAMS = {"duration": 30, "style": "cinematic"}


def new_job(params: dict[str, object] | None = None, prompt: str = "A robot exploring Mars") -> int:
    return save_generated_video(
        prompt=prompt, video_url="", model_id="v2",
        parameters=SPEC_PARAMS if params is None else params, status="pending",
    )


def storyboard_of(job_id: int) -> list[StoryboardEntry]:
    job = get_job(job_id)
    assert job is not None
    return [StoryboardEntry(**e) for e in json.loads(job.get("storyboard_data", "null") or "[]")]


def progress_of(job_id: int) -> VideoProgress:
    job = get_job(job_id)
    assert job is not None
    return VideoProgress(**json.loads(job.get("progress", "{}")))


def run(job_id: int, provider: ScriptedProvider, settings: Settings, **rt_args: object) -> str | None:
    rt = JobRuntime.create(settings, provider)
    for key, value in rt_args.items():
        setattr(rt, key, value)
    return asyncio.run(run_storyboard_job(job_id, rt))


def test_complete_success_workflow(settings: Settings) -> None:
    job_id = new_job()
    provider = ScriptedProvider()
    generate_storyboard_task(job_id, provider=provider)

    job = get_job(job_id)
    assert job is not None and job["status"] == "storyboard_ready"
    entries = storyboard_of(job_id)
    assert [e.scene.scene_number for e in entries] == [1, 2, 3, 4, 5, 6]
    assert all(e.generation_status == "completed" and e.error is None for e in entries)
    for e in entries:
        assert e.image_url and e.image_url.startswith("/media/")
        path = path_for_url(settings.media_dir, e.image_url)
        assert path is not None and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert e.source_url == f"https://replicate.delivery/fake/{e.scene.scene_number}.png"
    progress = progress_of(job_id)
    assert progress.current_stage == "storyboard_ready"
    assert progress.scenes_completed == progress.scenes_total == 6
    assert progress.message == "Storyboard ready"
    assert job["estimated_cost"] == pytest.approx(0.018)
    assert job["actual_cost"] == pytest.approx(0.018)
    assert job["error_message"] is None
    assert job["updated_at"] > job["created_at"]
    assert job["lease_owner"] is None and job["lease_expires_at"] is None  # lease given back
    assert provider.closed is False  # an injected provider belongs to the caller


def test_statuses_and_progress_after_every_scene(settings: Settings) -> None:
    job_id = new_job()
    seen: list[tuple[str, VideoProgress, int]] = []

    def snapshot(_request: object) -> None:
        job = get_job(job_id)
        assert job is not None
        seen.append((job["status"], progress_of(job_id), len(storyboard_of(job_id))))

    settings = settings.model_copy(update={"scene_concurrency": 1})
    run(job_id, ScriptedProvider(on_call=snapshot, delay=0.01), settings)
    assert [s[0] for s in seen] == ["generating_storyboard"] * 6
    # Sequential order: before scene n's image, n-1 scenes are done; the message names scene n.
    for n, (_, progress, entries) in enumerate(seen, start=1):
        assert progress.scenes_total == 6 and entries == 6
        assert progress.scenes_completed == n - 1
        assert progress.current_scene == n
        assert progress.message == f"Generating image for scene {n}/6"
        if n == 1:
            assert progress.estimated_completion_seconds is None
        else:  # the ETA is the average finished-image time x remaining scenes
            assert progress.estimated_completion_seconds is not None
            assert progress.estimated_completion_seconds > 0


def test_statuses_follow_the_spec_workflow(settings: Settings) -> None:
    """Every status the task writes, in order, read off the real UPDATE statements."""
    job_id = new_job()
    rt = JobRuntime.create(settings, ScriptedProvider())
    written: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        # The value bound to the SET clause's status (the WHERE clause's are "status_1" ...).
        if statement.startswith("UPDATE generated_videos SET"):
            status = context.compiled.params.get("status")
            if status is not None:
                written.append(status)

    event.listen(rt.engine, "before_cursor_execute", record)
    try:
        asyncio.run(run_storyboard_job(job_id, rt))
    finally:
        event.remove(rt.engine, "before_cursor_execute", record)
    assert written == ["parsing", "generating_storyboard", "storyboard_ready"]


def test_partial_failure(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    job_id = new_job()
    boom = RetryableImageError("Temporary error")
    provider = ScriptedProvider(script={3: [boom, boom, boom]})
    with caplog.at_level(logging.INFO, logger="storyboard"):
        assert run(job_id, provider, settings) == "storyboard_ready"
    entries = storyboard_of(job_id)
    assert entries[2].generation_status == "failed"
    assert entries[2].error == "Temporary error"
    assert entries[2].image_url is None
    assert [e.generation_status for i, e in enumerate(entries) if i != 2] == ["completed"] * 5
    assert progress_of(job_id).message == "Storyboard ready (1 scenes failed)"
    assert provider.attempts(3) == 3
    job = get_job(job_id)
    assert job is not None
    assert job["actual_cost"] == pytest.approx(5 * 0.003)  # only images produced are paid
    assert f"Job {job_id}: Scene 3 failed - All retries exhausted" in caplog.messages
    assert caplog.messages.count(f"Job {job_id}: Attempt 1 failed - Temporary error") == 1


def test_complete_failure(settings: Settings) -> None:
    job_id = new_job()
    boom = RetryableImageError("Temporary error")
    provider = ScriptedProvider(script={n: [boom] * 3 for n in range(1, 7)})
    assert run(job_id, provider, settings) == "failed"
    job = get_job(job_id)
    assert job is not None
    assert job["status"] == "failed"
    assert job["error_message"] == "All scene images failed to generate"
    assert job["actual_cost"] == 0
    assert all(e.generation_status == "failed" for e in storyboard_of(job_id))
    assert sum(provider.attempts(n) for n in range(1, 7)) == 18


def test_retry_then_success(settings: Settings) -> None:
    job_id = new_job()
    boom = RetryableImageError("Temporary error")
    provider = ScriptedProvider(script={1: [boom, boom, None]})
    assert run(job_id, provider, settings) == "storyboard_ready"
    assert provider.attempts(1) == 3
    assert storyboard_of(job_id)[0].generation_status == "completed"


def test_exponential_backoff_uses_spec_delays(settings: Settings) -> None:
    """Default settings: 3 attempts, waits of 2 s then 4 s (recorded, not slept)."""
    from storyboard.config import get_settings

    spec_settings = get_settings(retry_base_delay=2.0)
    assert spec_settings.max_retries == 3 and spec_settings.image_timeout == 120
    job_id = new_job({"duration": 15, "style": "cinematic"})
    sleeps: list[float] = []

    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    boom = RetryableImageError("Temporary error")
    provider = ScriptedProvider(script={1: [boom, boom, boom]})
    run(job_id, provider, spec_settings, sleep=record)
    assert sleeps == [2.0, 4.0]
    assert provider.attempts(1) == 3


def test_backoff_honours_retry_after(settings: Settings) -> None:
    job_id = new_job({"duration": 15, "style": "x"})
    sleeps: list[float] = []

    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    slow_down = RetryableImageError("throttled", retry_after=7.5)
    provider = ScriptedProvider(script={1: [slow_down, None]})
    from storyboard.config import get_settings

    run(job_id, provider, get_settings(retry_base_delay=2.0), sleep=record)
    assert sleeps == [7.5]


def test_timeout_per_image_counts_as_failed_attempt(settings: Settings) -> None:
    job_id = new_job({"duration": 15, "style": "x"})
    provider = ScriptedProvider(script={2: [30.0, 30.0, 30.0]})
    fast = settings.model_copy(update={"image_timeout": 0.05})
    assert run(job_id, provider, fast) == "storyboard_ready"
    entry = storyboard_of(job_id)[1]
    assert entry.generation_status == "failed"
    assert entry.error == "timed out after 0.05s"
    assert provider.attempts(2) == 3


def test_permanent_error_is_not_retried(settings: Settings) -> None:
    job_id = new_job({"duration": 15, "style": "x"})
    provider = ScriptedProvider(script={1: [PermanentImageError("NSFW content")]})
    assert run(job_id, provider, settings) == "storyboard_ready"
    assert provider.attempts(1) == 1
    assert storyboard_of(job_id)[0].error == "NSFW content"


def test_account_error_fails_the_job_once(settings: Settings) -> None:
    job_id = new_job()
    provider = ScriptedProvider(
        script={n: [AccountError("Replicate rejected the API key")] for n in range(1, 7)},
        delay=0.0,
    )
    assert run(job_id, provider, settings) == "failed"
    job = get_job(job_id)
    assert job is not None and job["error_message"] == "Replicate rejected the API key"
    assert len(provider.calls) <= 6  # never retried per scene
    assert all(provider.attempts(n) <= 1 for n in range(1, 7))


def test_job_not_found_changes_nothing(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = new_job()
    before = get_job(job_id)
    with caplog.at_level(logging.ERROR, logger="storyboard"):
        generate_storyboard_task(9999, provider=ScriptedProvider())
    assert "Job 9999 not found" in caplog.messages
    assert get_job(9999) is None
    assert get_job(job_id) == before


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"duration": 1000, "style": "x"}, "duration: must be between 5 and 300 seconds"),
        ({"duration": "thirty", "style": "x"}, "duration: must be a whole number"),
    ],
)
def test_parse_failure(settings: Settings, params: dict[str, object], fragment: str) -> None:
    job_id = new_job(params)
    provider = ScriptedProvider()
    assert run(job_id, provider, settings) == "failed"
    job = get_job(job_id)
    assert job is not None
    assert job["error_message"].startswith("Failed to parse prompt: ")
    assert fragment in job["error_message"]
    assert provider.calls == []


def test_parse_failure_on_empty_prompt(settings: Settings) -> None:
    job_id = new_job(prompt="  ")
    run(job_id, ScriptedProvider(), settings)
    job = get_job(job_id)
    assert job is not None
    assert job["error_message"] == "Failed to parse prompt: prompt: must not be empty"


def test_storyboard_data_serialization_round_trip(settings: Settings) -> None:
    job_id = new_job()
    run(job_id, ScriptedProvider(script={4: [PermanentImageError("bad")]}), settings)
    job = get_job(job_id)
    assert job is not None
    raw = json.loads(job["storyboard_data"])
    assert set(raw[0]) >= {"scene", "image_url", "generation_status", "error"}
    # The spec's fields, and the shot (the rules planner's here).
    assert set(raw[0]["scene"]) >= {"scene_number", "description", "duration", "image_prompt",
                                    "beat", "shot_size", "camera_angle", "camera_movement"}
    entries = [StoryboardEntry(**e) for e in raw]
    assert [e.model_dump(mode="json") for e in entries] == raw
    assert raw[3]["generation_status"] == "failed" and raw[3]["error"] == "bad"


def test_spec_thread_usage(settings: Settings) -> None:
    """The spec's first usage example: a daemon Thread running the task on the env's settings."""
    job_id = save_generated_video(
        prompt="A robot exploring Mars", video_url="", model_id="v2",
        parameters={"duration": 30, "style": "cinematic"}, status="pending",
    )
    thread = threading.Thread(target=generate_storyboard_task, args=(job_id,))
    thread.daemon = True
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    job = get_job(job_id)
    assert job is not None and job["status"] == "storyboard_ready"
    assert job["actual_cost"] == 0  # the sketch renderer is free
    entries = storyboard_of(job_id)
    assert len(entries) == 6
    files = sorted(Path(settings.media_dir, "jobs", str(job_id)).glob("scene-*.png"))
    assert len(files) == 6


def test_seed_and_aspect_ratio_reach_the_provider(settings: Settings) -> None:
    job_id = new_job({"duration": 15, "style": "x", "aspect_ratio": "9:16", "seed": 42})
    provider = ScriptedProvider()
    run(job_id, provider, settings)
    assert {c.aspect_ratio for c in provider.calls} == {"9:16"}
    assert sorted(c.seed for c in provider.calls if c.seed is not None) == [42, 43, 44]


def test_log_lines_follow_the_spec(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    job_id = new_job()
    boom = RetryableImageError("Temporary error")
    with caplog.at_level(logging.INFO, logger="storyboard"):
        run(job_id, ScriptedProvider(script={1: [boom, None]}), settings)
    messages = caplog.messages
    assert f"Starting storyboard generation for job {job_id}" in messages
    assert f"Job {job_id}: Parsing prompt into scenes" in messages
    assert f"Job {job_id}: Parsed into 6 scenes" in messages
    assert f"Job {job_id}: Generating image for scene 1/6" in messages
    assert any(m.startswith(f"Job {job_id}: Scene 1 completed - /media/") for m in messages)
    assert f"Job {job_id}: Attempt 1 failed - Temporary error" in messages
    warning = next(r for r in caplog.records if "Attempt 1 failed" in r.getMessage())
    assert warning.levelname == "WARNING"


def test_waiting_for_a_free_slot_does_not_count_against_the_image_timeout(
    settings: Settings,
) -> None:
    # One image at a time in this process: the tenth scene waits ~1.8 s for its turn, longer
    # than the 1 s image limit, yet each image itself takes 0.2 s, well within it.
    settings = settings.model_copy(update={"image_timeout": 1.0})
    job_id = new_job({"duration": 50, "style": "cinematic"})
    provider = ScriptedProvider(delay=0.2)
    assert run(job_id, provider, settings, image_slots=asyncio.Semaphore(1)) == "storyboard_ready"
    assert len(provider.calls) == 10  # no attempt timed out and was retried


def test_a_provider_that_cannot_start_fails_the_job_with_the_reason(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORYBOARD_IMAGE_PROVIDER", "replicate")  # but no key is set
    job_id = new_job()
    generate_storyboard_task(job_id)  # the spec's call: settings from the environment
    job = get_job(job_id)
    assert job is not None and job["status"] == "failed"  # not left pending forever
    assert job["error_message"].startswith("Cannot start: No Replicate API key")
    assert "REPLICATE_API_KEY" in job["error_message"]


def test_a_second_message_for_a_running_job_does_not_run_it_twice(settings: Settings) -> None:
    """A queue delivers a job twice to one process (a redelivery, a re-dispatch): both
    deliveries share the process's lease, so only the runtime can tell; the scenes are drawn
    (and paid for) once."""
    job_id = new_job({"duration": 15, "style": "cinematic"})
    provider = ScriptedProvider(delay=0.2)
    rt = JobRuntime.create(settings, provider)

    async def twice() -> list[str | None]:
        first = asyncio.create_task(run_storyboard_job(job_id, rt))
        await asyncio.sleep(0.05)  # the first run has the job
        second = await run_storyboard_job(job_id, rt)
        return [await first, second]

    first, second = asyncio.run(twice())
    assert first == "storyboard_ready" and second in ("pending", "parsing", "generating_storyboard")
    assert sorted(r.scene.scene_number for r in provider.calls if r.scene) == [1, 2, 3]


def test_a_run_that_lost_its_job_never_writes_over_the_new_holder(settings: Settings) -> None:
    """Another worker takes the job over mid-run (its lease was judged lapsed): the old run
    stops, and neither its progress writes nor its stop write touch the new holder's row."""
    job_id = new_job({"duration": 15, "style": "cinematic"})
    engine = get_engine(settings)

    def taken_over(request: ImageRequest) -> None:
        if request.scene is not None and request.scene.scene_number == 2:
            update_job(engine, job_id, lease_owner="other-host:1:abc",
                       storyboard_data='["the new holder\'s"]')

    provider = ScriptedProvider(on_call=taken_over, delay=0.1)
    status = run(job_id, provider, settings)
    assert status == "generating_storyboard"  # stopped: the job is the other holder's now
    job = get_job(job_id)
    assert job is not None and job["lease_owner"] == "other-host:1:abc"
    assert job["storyboard_data"] == '["the new holder\'s"]'
