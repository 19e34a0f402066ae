"""The console command, run as a user would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from storyboard import get_job
from storyboard.config import Settings


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
