"""The console command, run as a user would run it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from storyboard import get_job
from storyboard.config import Settings
from storyboard.db import get_engine, update_job
from storyboard.db.models import utcnow
from storyboard.jobs import JobRuntime, create_storyboard_job
from storyboard.schemas import GenerationRequest

from .providers import ScriptedProvider


def storyboard(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "160"}
    return subprocess.run([sys.executable, "-m", "storyboard", *args], capture_output=True,
                          text=True, timeout=120, env=env, check=False)


def test_generate_spec_example(settings: Settings) -> None:
    result = storyboard("generate", "A robot exploring Mars", "--duration", "30",
                        "--style", "cinematic")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Storyboard ready" in out
    assert "Opening scene: A robot exploring Mars" in out
    assert "Closing/CTA" in out
    folder = settings.media_dir / "jobs" / "1"
    assert str(folder) in out.replace("\n", "")
    sheet = (folder / "index.html").read_text()
    assert sheet.index("Scene 1") < sheet.index("Scene 2") < sheet.index("Scene 6")
    assert "Setting up context for: A robot exploring Mars" in sheet and "5s" in sheet
    for n in range(1, 7):
        assert (folder / f"scene-{n:02d}-v1.png").is_file()
        assert f'src="scene-{n:02d}-v1.png"' in sheet
        assert f"scene-{n:02d}-v1.png" in out  # each file named whole in the table
    job = get_job(1)
    assert job is not None and job["status"] == "storyboard_ready"


def test_bad_input_exits_non_zero_with_message_and_no_row(settings: Settings) -> None:
    result = storyboard("generate", "A cat", "--duration", "3")
    assert result.returncode == 2
    assert "duration" in result.stderr and "5" in result.stderr
    long = storyboard("generate", "x" * 2001)
    assert long.returncode == 2 and "prompt" in long.stderr and "2000" in long.stderr
    ratio = storyboard("generate", "A cat", "--aspect-ratio", "2:1")
    assert ratio.returncode == 2 and "aspect_ratio" in ratio.stderr
    assert not Path(settings.data_dir / "storyboard.db").exists() or get_job(1) is None


def test_failed_job_exits_non_zero_with_error(settings: Settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # A Cog server nobody runs: every attempt fails to connect, so every scene fails.
    monkeypatch.setenv("STORYBOARD_IMAGE_PROVIDER", "cog")
    monkeypatch.setenv("STORYBOARD_COG_URL", "http://127.0.0.1:9")
    result = storyboard("generate", "A cat", "--duration", "15")
    assert result.returncode == 1
    assert "All scene images failed to generate" in result.stderr


def test_serve_help_shows_loopback_default() -> None:
    result = storyboard("serve", "--help")
    assert result.returncode == 0 and "127.0.0.1" in result.stdout and "8000" in result.stdout


def test_settings_that_cannot_work_fail_with_a_message_before_any_job_is_written(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    monkeypatch.setenv("STORYBOARD_IMAGE_PROVIDER", "replicate")  # and no key
    no_key = storyboard("generate", "A cat", "--duration", "15")
    assert no_key.returncode == 1 and "REPLICATE_API_KEY" in no_key.stderr
    assert get_job(1) is None  # no job left waiting for a worker to run (and bill) it later
    served = storyboard("serve", "--port", "1")  # fails before it would bind
    assert served.returncode == 1 and "REPLICATE_API_KEY" in served.stderr
    monkeypatch.delenv("STORYBOARD_IMAGE_PROVIDER")

    a_file = tmp_path / "a-file"
    a_file.write_text("")
    cases = [
        ("DATABASE_URL", "notaurl", "DATABASE_URL"),
        ("DATABASE_URL", "mysql://x@y/z", "No module named"),
        ("DATABASE_URL", "sqlite://", "in-memory"),
        ("DATABASE_URL", "postgresql+psycopg://app:s3cret@127.0.0.1:1/x", "app:***@"),
        ("DATA", str(a_file), "set DATA to a writable directory"),
        ("DATABASE_URL", "postgresql+psycopg://bob:s3cret@pw@127.0.0.1/x", "%40"),
        ("DATABASE_URL", "postgresql+psycopg://bob:s3cret@127.0.0.1:notaport/x", "notaport"),
        # An '@' in the user name (Azure's "user@server") is fine: this one fails to connect.
        ("DATABASE_URL", "postgresql+psycopg://me@srv:s3cret@127.0.0.1:1/x", "me%40srv:***@"),
    ]
    for name, value, says in cases:
        monkeypatch.setenv(name, value)
        for command in (("generate", "A cat"), ("db", "upgrade")):
            result = storyboard(*command)
            assert result.returncode == 1, (value, command)
            assert says in result.stderr and "Traceback" not in result.stderr, result.stderr
            assert "s3cret" not in result.stderr
        monkeypatch.delenv(name)
    monkeypatch.setenv("STORYBOARD_LEASE_SECONDS", "inf")  # would overflow a date later
    infinite = storyboard("generate", "A cat")
    assert infinite.returncode == 2 and "finite" in infinite.stderr
    monkeypatch.delenv("STORYBOARD_LEASE_SECONDS")
    monkeypatch.setenv("STORYBOARD_BROKER_URL", "foo")
    worker = storyboard("worker")
    assert worker.returncode == 1 and "STORYBOARD_BROKER_URL" in worker.stderr
    assert "Traceback" not in worker.stderr


def test_text_in_brackets_is_shown_as_typed(settings: Settings) -> None:
    result = storyboard("generate", "A cat", "--duration", "5", "--style", "[/] [bold]neon")
    assert result.returncode == 0, result.stderr
    assert "[/] [bold]neon storyboard" in result.stdout  # not read as Rich markup


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_generate_cancels_its_job(settings: Settings, sig: signal.Signals) -> None:
    """The user gave up: the job ends cancelled (not left for a worker to finish and bill)."""
    env = {**os.environ, "COLUMNS": "160", "STORYBOARD_SKETCH_DELAY": "30"}
    process = subprocess.Popen([sys.executable, "-m", "storyboard", "generate", "A cat",
                                "--duration", "15"], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while (job := get_job(1)) is None or job["status"] != "generating_storyboard":
            assert time.monotonic() < deadline and process.poll() is None, "never started"
            time.sleep(0.05)
        process.send_signal(sig)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert "interrupted: job 1 cancelled" in stderr and "Traceback" not in stderr
    job = get_job(1)
    assert job is not None and job["status"] == "cancelled"


def test_generate_follows_a_job_another_worker_holds_and_takes_it_back(
    settings: Settings,
) -> None:
    """A worker on the same database took the new job first (its lease is live): generate
    shows that run's progress, and takes the job back once the lease is let go (here: it
    lapses, as when that worker died)."""
    from storyboard.cli.generate import _LocalRun

    job_id = create_storyboard_job(GenerationRequest(prompt="A cat", duration=15),
                                   settings=settings)
    update_job(get_engine(settings), job_id, lease_owner="elsewhere:1:ab:1",
               lease_expires_at=utcnow() + timedelta(seconds=1))
    provider = ScriptedProvider()

    async def main() -> str | None:
        rt = JobRuntime.create(settings, provider)
        try:
            return await asyncio.wait_for(_LocalRun(job_id, rt).follow(), 30)
        finally:
            await rt.aclose()

    assert asyncio.run(main()) == "storyboard_ready"
    assert len(provider.calls) == 3  # drawn here, once


def test_generate_shows_the_shots_and_who_planned_them(settings: Settings) -> None:
    result = storyboard("generate", "A robot exploring Mars", "--duration", "30")
    assert result.returncode == 0, result.stderr
    assert "Shot" in result.stdout and "WS \u00b7 EYE LEVEL \u00b7 PAN" in result.stdout
    assert "Planned with the rules - set OPENAI_API_KEY" in result.stdout


def test_generate_plans_with_the_language_model_asked_for(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fake_llm import FAKE_LLM_KEY, FakeLLM

    from .story import LIGHTHOUSE

    refused = storyboard("generate", "A cat", "--planner", "llm")
    assert refused.returncode == 2
    assert "planner" in refused.stderr and "STORYBOARD_LLM_API_KEY" in refused.stderr
    assert get_job(1) is None  # nothing written
    bad = storyboard("generate", "A cat", "--planner", "gpt")
    assert bad.returncode == 2 and "planner" in bad.stderr
    with FakeLLM() as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", FAKE_LLM_KEY)
        result = storyboard("generate", LIGHTHOUSE, "--duration", "20", "--planner", "llm")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Planned by openai (gpt-4o-mini)" in out and "The Keeper's Message" in out
    assert "Mara" in out and "INSERT \u00b7 HIGH \u00b7 STATIC" in out
    assert FAKE_LLM_KEY not in out + result.stderr
